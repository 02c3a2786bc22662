// Command mailu-standin runs the MailU stand-in as its own process for
// `make run`: MailU instances created and faulted through a control API on
// loopback, kept across restarts in a state file, and the internal auth
// endpoint that make run's Dovecot front asks.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/mailu"
)

func main() {
	control := flag.String("control", "127.0.0.1:8025", "loopback host:port of the control API")
	state := flag.String("state", "", "JSON file that keeps instances and users across restarts (empty: memory only)")
	cost := flag.Int("bcrypt-cost", 0, "bcrypt cost of stored password hashes (0: bcrypt's default)")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, *control, *state, *cost); err != nil {
		log.Error("mailu-standin failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, control, state string, cost int) error {
	// The control API has no authentication and the instances accept
	// clear-text logins: nothing may listen beyond this machine.
	if !mailu.IsLoopback(control) {
		return errors.New("-control must be a loopback address such as 127.0.0.1:8025")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// MailU's own setting: networks never rate limited (the functions'
	// egress addresses in production, docs/local-mailu.md).
	limits := mailustandin.DefaultAuthLimits()
	exempt, err := mailustandin.ParseExemption(os.Getenv("AUTH_RATELIMIT_EXEMPTION"))
	if err != nil {
		return err
	}
	limits.Exemption = exempt
	srv := mailustandin.NewServer(mailustandin.Options{StatePath: state, Logger: log, BcryptCost: cost, AuthLimits: &limits})
	defer srv.Close()
	if err := srv.Restore(ctx); err != nil {
		return err
	}

	// The internal auth endpoint and relay that the Dovecot front (started
	// by the caller, which reads them from GET /internal) uses.
	internal, err := srv.StartInternal()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", control)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.ControlHandler(internal), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("mailu-standin ready", "control", ln.Addr().String(), "state", state, "instances", len(srv.Instances()))

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	log.Info("mailu-standin stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		log.Warn("control API did not stop cleanly", "error", err)
	}
	if err := srv.Close(); err != nil {
		return err
	}
	log.Info("mailu-standin stopped")
	return nil
}
