// Package auth says who is calling: it verifies bearer tokens (JWTs) against
// a JWKS the way API Gateway's JWT authorizer does, and turns the verified
// claims into the principal and roles that handlers authorise on.
package auth

import "errors"

var (
	// ErrUnauthenticated means the caller could not be identified: no token,
	// a token that fails verification, or claims without a subject. Errors
	// wrapping it carry a short reason and never the token itself.
	ErrUnauthenticated = errors.New("unauthenticated")

	// ErrForbidden means the caller is known but holds none of the roles the
	// action needs.
	ErrForbidden = errors.New("forbidden")
)
