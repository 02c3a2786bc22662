package app

// Handlers returns every function's Lambda handler by function name, as
// the functions/<name>/main.go files start them. The local gateway serves
// these, so a route runs the same handler locally and in AWS.
func (a *App) Handlers() map[string]any {
	return map[string]any{
		"store":           a.API.StoreFunction(),
		"retrieve":        a.API.Retrieve(),
		"reauth":          a.API.Reauth(),
		"rotate":          a.API.RotateFunction(),
		"rotate-sweep":    a.API.RotateSweepFunction(),
		"emergency-reset": a.API.EmergencyResetFunction(),
		"audit":           a.API.AuditFunction(),
		"backup":          a.BackupFunction(nil),
		"recover":         a.API.RecoverFunction(),
		"console":         a.API.ConsoleFunction(),
	}
}
