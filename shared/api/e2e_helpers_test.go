package api_test

import "os"

func readAll(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
