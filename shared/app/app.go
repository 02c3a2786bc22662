// Package app wires the adapters and the domain from a Config. The Lambda
// mains and the local gateway call the same constructor, so both run the
// same code.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"smtp-vault/shared/alert"
	"smtp-vault/shared/api"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/queue"
	"smtp-vault/shared/reauth"
	"smtp-vault/shared/tracing"
	"smtp-vault/shared/vault"
)

// App is a wired instance of the service.
type App struct {
	Config Config
	Vault  *vault.Client
	Audit  *audit.Recorder
	Log    *slog.Logger
	API    api.Deps
	// Notifier delivers rotation notices and security alerts.
	Notifier notify.Notifier
	// Trail is the audit trail in the Object Lock bucket (nil without
	// AUDIT_BUCKET).
	Trail *audit.Bucket
}

// Options changes where an App writes; the zero value is right for Lambda.
type Options struct {
	AuditOut io.Writer        // default os.Stdout (CloudWatch Logs)
	LogOut   io.Writer        // default os.Stderr
	Now      func() time.Time // default time.Now
	Sinks    []audit.Sink     // extra audit sinks, after the stream and the bucket
	Notifier notify.Notifier  // default: SNS when NOTIFY_TOPIC_ARN is set, else JSON lines on LogOut
	// RotateQueue takes the sweep's and the bulk rotation's jobs; default:
	// SQS when ROTATE_QUEUE_URL is set, else none (jobs run inline).
	RotateQueue credential.Queue
	// ResetQueue takes a compromise response's jobs; default: SQS when
	// RESET_QUEUE_URL is set, else none (the request resets them).
	ResetQueue credential.ResetQueue
	// Verifier checks bearer tokens in the functions; default: the
	// identity provider of JWT_ISSUER (locally the stack's dev issuer).
	Verifier api.TokenVerifier
}

// New wires an App. It contacts AWS only for Vault's aws auth method, and
// Vault not at all until the first request.
func New(ctx context.Context, cfg Config, opts Options) (*App, error) {
	if opts.AuditOut == nil {
		opts.AuditOut = os.Stdout
	}
	if opts.LogOut == nil {
		opts.LogOut = os.Stderr
	}
	log := slog.New(slog.NewJSONHandler(opts.LogOut, &slog.HandlerOptions{Level: parseLevel(cfg.LogLevel)}))

	var awsCfg *aws.Config
	loadAWS := func() (aws.Config, error) {
		if awsCfg == nil {
			c, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.AWSRegion))
			if err != nil {
				return aws.Config{}, fmt.Errorf("app: load AWS config: %w", err)
			}
			tracing.InstrumentAWS(&c)
			awsCfg = &c
		}
		return *awsCfg, nil
	}

	vc := vault.Config{
		Address:      cfg.VaultAddr,
		AuthMethod:   cfg.VaultAuthMethod,
		Token:        cfg.VaultToken,
		AuthMount:    cfg.VaultAuthMount,
		RoleID:       cfg.VaultRoleID,
		SecretID:     cfg.VaultSecretID,
		AWSRole:      cfg.VaultAWSRole,
		AWSServerID:  cfg.VaultAWSServerID,
		KVMount:      cfg.KVMount,
		TransitMount: cfg.TransitMount,
		Timeout:      cfg.VaultTimeout,
		HTTPClient:   vaultHTTPClient(cfg),
	}
	if cfg.VaultAuthMethod == vault.AuthAWS {
		c, err := loadAWS()
		if err != nil {
			return nil, err
		}
		vc.AWSLogin = vault.AWSIAMLogin(c.Credentials, cfg.AWSRegion)
	}
	vcl, err := vault.New(vc)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}

	notifier := opts.Notifier
	switch {
	case notifier != nil:
	case cfg.NotifyTopicARN != "":
		c, err := loadAWS()
		if err != nil {
			return nil, err
		}
		notifier = notify.SNS{Client: sns.NewFromConfig(c), TopicARN: cfg.NotifyTopicARN}
	default:
		notifier = notify.NewLines(opts.LogOut, opts.Now)
	}
	// Sinks in order: CloudWatch (stdout), the Object Lock bucket, any
	// extra ones; the alert rules observe each event meanwhile.
	s3c, err := s3Client(cfg, loadAWS)
	if err != nil {
		return nil, err
	}
	sinks := []audit.Sink{audit.NewStreamSink(opts.AuditOut)}
	var trail *audit.Bucket
	if cfg.AuditBucket != "" {
		trail = newTrail(cfg, s3c, vcl, log, opts.AuditOut)
		sinks = append(sinks, trail)
	}
	sinks = append(sinks, opts.Sinks...)
	rec := audit.NewRecorder(opts.Now, sinks...)
	rec.AddObservers(alert.New(alertState(cfg, s3c, vcl), notifier, log))

	rotateQueue := opts.RotateQueue
	if rotateQueue == nil && cfg.RotateQueueURL != "" {
		c, err := loadAWS()
		if err != nil {
			return nil, err
		}
		rotateQueue = queue.SQS[credential.Job]{Client: sqs.NewFromConfig(c), QueueURL: cfg.RotateQueueURL}
	}
	resetQueue := opts.ResetQueue
	if resetQueue == nil && cfg.ResetQueueURL != "" {
		c, err := loadAWS()
		if err != nil {
			return nil, err
		}
		resetQueue = queue.SQS[credential.ResetJob]{Client: sqs.NewFromConfig(c), QueueURL: cfg.ResetQueueURL}
	}
	var trailPort credential.Trail
	if trail != nil {
		trailPort = trail
	}
	mailuHTTP := tracing.HTTPClient(mailuHTTPClient(cfg))
	svc := credential.New(credential.Config{
		Vault:             vcl,
		TransitKey:        cfg.TransitKey,
		KVMount:           cfg.KVMount,
		IndexMount:        cfg.IndexMount,
		LegacyIndexShards: cfg.LegacyIndexShards,
		IndexCacheTTL:     cfg.IndexCacheTTL,
		DialMailU: func(apiURL, token string) credential.MailU {
			return mailu.New(apiURL, token, mailuHTTP)
		},
		VerifyLogin:  SMTPVerifier(cfg.SMTPTimeout, cfg.MailURootCAs),
		Audit:        rec,
		Trail:        trailPort,
		Notifier:     notifier,
		Queue:        rotateQueue,
		ResetQueue:   resetQueue,
		Inline:       cfg.RotateInline,
		Reserve:      2 * time.Minute,
		Now:          opts.Now,
		Log:          log,
		Cooldown:     cfg.RotationCooldown,
		AllowedHosts: cfg.EndpointAllowedHosts,
	})
	ra, err := reauth.New(reauth.Config{
		Vault:         vcl,
		UserpassMount: cfg.UserpassMount,
		AttemptsMount: cfg.AccessMount,
		SigningKey:    cfg.ReauthKey,
		TTL:           cfg.ReauthTTL,
		Audit:         rec,
		Alerts:        notifier,
		Now:           opts.Now,
		Log:           log,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	site, err := console.New(console.Config{SignInMode: cfg.ConsoleSignInMode, SignInURL: cfg.ConsoleSignInURL,
		TokenURL: cfg.ConsoleTokenURL, ClientID: cfg.ConsoleClientID, RolesClaim: cfg.RolesClaim})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a := &App{
		Notifier: notifier,
		Trail:    trail,
		Config:   cfg,
		Vault:    vcl,
		Audit:    rec,
		Log:      log,
		API: api.Deps{
			Credentials: svc, Reauthenticator: ra, Audit: rec, Log: log,
			Verifier: tokenVerifier(cfg, opts.Verifier), APIID: cfg.HTTPAPIID,
			Console: site,
		},
	}
	a.API.Health = &healthReporter{backups: &lazyBackups{app: a}}
	return a, nil
}

// SMTPVerifier logs in over SMTP AUTH (mailu.VerifyLogin). The password
// is only ever sent inside TLS with the server's certificate checked
// against the host name and roots (the system's, plus MAILU_CA_FILE's):
// implicit TLS on 465 or smtps://, STARTTLS otherwise. Clear text is
// left only to a server on loopback when no CA is configured (a plain
// SMTP stand-in in tests); no certificate check is ever skipped.
func SMTPVerifier(timeout time.Duration, roots *x509.CertPool) func(ctx context.Context, addr, user, pass string) error {
	return func(ctx context.Context, addr, user, pass string) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		a, err := mailu.ParseSMTPAddr(addr)
		if err != nil {
			return err
		}
		var tlsConf *tls.Config
		if roots != nil || !mailu.IsLoopback(a.Host) {
			tlsConf = &tls.Config{ServerName: a.Host, RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		return mailu.VerifyLogin(ctx, addr, user, pass, tlsConf)
	}
}

// idleConnsPerHost is how many idle connections a client keeps to one
// host: as many as the work keeps in flight (credential.DefaultConcurrency
// resets or reads, each with its own requests, plus the index writes), with
// room. http.DefaultTransport keeps 2, and vault/api's own transport
// GOMAXPROCS+1: with 16 requests in flight over HTTP/1.1, every request
// beyond those opened a connection and closed it after. Keeping them took
// the compromise response over 2,000 local tenants from 36.3 to 40.6
// resets a second (docs/measurements.md). Over TLS with HTTP/2 one
// connection carries them all and this bound matters less.
const idleConnsPerHost = 64

// pooledTransport is http.DefaultTransport's configuration keeping
// idleConnsPerHost idle connections a host, speaking TLS 1.2 or later and
// trusting roots (the system's when nil).
func pooledTransport(roots *x509.CertPool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = idleConnsPerHost
	tr.MaxIdleConns = 4 * idleConnsPerHost
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return tr
}

// vaultHTTPClient carries every Vault request (traced when X-Ray is on),
// trusting VAULT_CACERT's roots beside the system's.
func vaultHTTPClient(cfg Config) *http.Client {
	return tracing.HTTPClient(&http.Client{Transport: pooledTransport(cfg.VaultRootCAs)})
}

// mailuHTTPClient is the admin API's client, trusting MAILU_CA_FILE's
// roots beside the system's (only the system's when unset).
func mailuHTTPClient(cfg Config) *http.Client {
	return &http.Client{Timeout: cfg.MailUTimeout, Transport: pooledTransport(cfg.MailURootCAs)}
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// tokenVerifier is the functions' own check of bearer tokens: the given
// one, or the identity provider's JWKS; nil (every request refused) when
// no issuer is configured.
func tokenVerifier(cfg Config, given api.TokenVerifier) api.TokenVerifier {
	if given != nil {
		return given
	}
	if cfg.JWTIssuer == "" {
		return nil
	}
	return auth.NewVerifier(auth.VerifierConfig{
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, JWKSURL: cfg.JWKSURL, RolesClaim: cfg.RolesClaim,
	})
}
