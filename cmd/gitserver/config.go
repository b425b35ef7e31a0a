package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"gitserver/gitserver"
)

// config is the server's configuration. Each field is a flag, readable also
// from GITSERVER_<NAME> and from the --config file; precedence is flag, then
// environment, then file, then the embedded default.
type config struct {
	Data               string
	SecretKeyFile      string
	HTTPAddr           string
	SSHAddr            string
	BaseURL            string
	AnonymousRead      bool
	BuildWebhook       string
	BuildWebhookSecret string
	// BuildWebhookSecretFile holds the secret (read by loadConfig into
	// BuildWebhookSecret).
	BuildWebhookSecretFile string
	LogLevel               string
	LogFormat              string
	MaxPushMB              int64
	PackCacheMB            int64
	PackCacheMaxAge        time.Duration
	ResponseCache          bool
	MaintenanceDelay       time.Duration
	HTTPBodyTimeout        time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (gitserver.WithTrustedProxies).
	TrustedProxies string
	MirrorMaxSyncs int
	// SSH connections that have not authenticated yet (gitserver.SSHServer).
	SSHLoginGrace         time.Duration
	SSHMaxStartupsPerIP   int
	SSHMaxUnauthenticated int
	// DatabaseURL selects PostgreSQL (postgres://...); empty is the
	// SQLite file in the data directory.
	DatabaseURL      string
	DatabaseMaxConns int
	// ReposDir is the repository root (shared storage when several nodes
	// serve one database); empty is <data>/repos.
	ReposDir string

	// OIDC is single sign-on (off without an issuer).
	OIDC oidcConfig

	// Warnings are for the log once it exists (e.g. a secret given on the
	// command line).
	Warnings []string
}

func envName(flagName string) string {
	return "GITSERVER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func serveFlags(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Data, "data", "./gitserver-data", "data directory (database, repositories, SSH host keys)")
	fs.StringVar(&c.SecretKeyFile, "secret-key-file", "", "file of the key that seals secrets in the database, created 0600 if missing (default <data>/secret.key)")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "HTTP listen address")
	fs.StringVar(&c.SSHAddr, "ssh-addr", ":2222", "SSH listen address (empty disables SSH)")
	fs.StringVar(&c.BaseURL, "base-url", "http://localhost:8080", "external base URL, used in clone URLs")
	fs.BoolVar(&c.AnonymousRead, "anonymous-read", false, "let anonymous clients read public repositories")
	fs.StringVar(&c.BuildWebhook, "build-webhook", "", "URL to POST a signed notification to when a build is queued")
	fs.StringVar(&c.BuildWebhookSecret, "build-webhook-secret", "", "HMAC-SHA256 secret for --build-webhook (prefer the environment, the config file or --build-webhook-secret-file: a flag is visible in ps)")
	fs.StringVar(&c.BuildWebhookSecretFile, "build-webhook-secret-file", "", "file whose content (one line) is the secret for --build-webhook")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.Int64Var(&c.MaxPushMB, "max-push-mb", 4096, "largest accepted push, in MiB")
	fs.Int64Var(&c.PackCacheMB, "pack-cache-mb", 1024, "size cap of the cache of identical clone/fetch packs, in MiB (0 disables it)")
	fs.DurationVar(&c.PackCacheMaxAge, "pack-cache-max-age", 10*time.Minute, "how long a cached pack may be served")
	fs.BoolVar(&c.ResponseCache, "response-cache", true, "answer identical HTTP clones from whole cached responses, without git (within --pack-cache-mb; false: the pack cache alone)")
	fs.DurationVar(&c.MaintenanceDelay, "maintenance-delay", 30*time.Second, "quiet time after a push before a repository is repacked (bitmaps, commit-graph)")
	fs.IntVar(&c.MirrorMaxSyncs, "mirror-max-syncs", 4, "mirror syncs (fetches from upstreams) allowed at once")
	fs.DurationVar(&c.SSHLoginGrace, "ssh-login-grace", gitserver.DefaultSSHLoginGrace, "time an SSH connection has to authenticate before it is closed")
	fs.IntVar(&c.SSHMaxStartupsPerIP, "ssh-max-startups-per-ip", gitserver.DefaultSSHMaxStartupsPerIP, "unauthenticated SSH connections allowed per client (IPv4 address or IPv6 /64)")
	fs.IntVar(&c.SSHMaxUnauthenticated, "ssh-max-unauthenticated", gitserver.DefaultSSHMaxUnauthenticated, "unauthenticated SSH connections allowed in all (beyond it a new one replaces the busiest client's oldest)")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL database (postgres://USER:PASSWORD@HOST:PORT/DB) shared by every node; empty uses the SQLite file in the data directory (prefer the environment or the config file: a flag is visible in ps)")
	fs.IntVar(&c.DatabaseMaxConns, "database-max-conns", 10, "size of the PostgreSQL connection pool (per node)")
	fs.StringVar(&c.ReposDir, "repos-dir", "", "repository root; several nodes on one --database-url share it (default <data>/repos)")
	fs.DurationVar(&c.HTTPBodyTimeout, "http-body-timeout", 60*time.Second, "end an HTTP request whose body receives no byte for this long (a stalled push or fetch)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "reverse proxies in front of the server (comma-separated IPs and CIDR prefixes): for requests from them, the client is the rightmost X-Forwarded-For address not among them (sign-in throttles, logs)")
	oidcFlags(fs, &c.OIDC)
	return fs
}

// loadConfig parses args, then fills unset flags from the environment and
// the config file. For --help or -h it writes the usage to helpOut and
// returns flag.ErrHelp.
func loadConfig(args []string, helpOut io.Writer) (config, error) {
	var c config
	fs := serveFlags(&c)
	fs.SetOutput(io.Discard) // errors are returned; the usage is ours
	fs.Usage = func() {}
	configPath := fs.String("config", "", "optional config file of \"name = value\" lines (names as the flags)")
	if _, err := parseInterspersed(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printServeUsage(helpOut, fs)
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *configPath == "" {
		*configPath = os.Getenv("GITSERVER_CONFIG")
	}
	var file map[string]string
	if *configPath != "" {
		var err error
		if file, err = readConfigFile(*configPath, fs); err != nil {
			return c, err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", envName(f.Name), err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %v", *configPath, f.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if set["build-webhook-secret"] {
		c.Warnings = append(c.Warnings, "--build-webhook-secret on the command line is visible to every user of this machine (ps, /proc); "+
			"set GITSERVER_BUILD_WEBHOOK_SECRET, build-webhook-secret in the config file, or --build-webhook-secret-file instead")
	}
	if set["database-url"] && strings.Contains(redactedOrEmpty(c.DatabaseURL), "xxxxx") {
		c.Warnings = append(c.Warnings, "--database-url with a password on the command line is visible to every user of this machine (ps, /proc); "+
			"set GITSERVER_DATABASE_URL or database-url in the config file instead")
	}
	if c.BuildWebhookSecretFile != "" {
		if c.BuildWebhookSecret != "" {
			return c, errors.New("give the build webhook's secret once: --build-webhook-secret or --build-webhook-secret-file, not both")
		}
		secret, err := readSecretFile(c.BuildWebhookSecretFile)
		if err != nil {
			return c, fmt.Errorf("--build-webhook-secret-file: %w", err)
		}
		c.BuildWebhookSecret = secret
	}
	if err := c.OIDC.load(set); err != nil {
		return c, err
	}
	return c, c.validate()
}

// readSecretFile reads a secret kept in a file: its content without the
// trailing newline, which must not be empty.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}

// printServeUsage writes serve's usage: every flag with its environment
// variable and default.
func printServeUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, "usage: gitserver serve [flags]\n\n"+
		"Each flag can also be set with the environment variable shown or in the --config file;\n"+
		"a flag beats the environment, which beats the file.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		if f.Name != "config" {
			usage += " [" + envName(f.Name) + "]"
		} else {
			usage += " [GITSERVER_CONFIG]"
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
}

func (c config) validate() error {
	if c.Data == "" {
		return errors.New("--data must not be empty")
	}
	if c.HTTPAddr == "" {
		return errors.New("--http-addr must not be empty")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--base-url %q must be an absolute http(s) URL", c.BaseURL)
	}
	if c.BuildWebhook != "" {
		u, err := url.Parse(c.BuildWebhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--build-webhook %q must be an absolute http(s) URL", c.BuildWebhook)
		}
		if c.BuildWebhookSecret == "" {
			return errors.New("--build-webhook needs a secret: GITSERVER_BUILD_WEBHOOK_SECRET, build-webhook-secret in the config file, or --build-webhook-secret-file")
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if c.PackCacheMB < 0 || c.PackCacheMaxAge <= 0 || c.MaintenanceDelay <= 0 {
		return errors.New("--pack-cache-mb must not be negative; --pack-cache-max-age and --maintenance-delay must be positive")
	}
	if c.SSHLoginGrace <= 0 || c.SSHMaxStartupsPerIP <= 0 || c.SSHMaxUnauthenticated <= 0 {
		return errors.New("--ssh-login-grace, --ssh-max-startups-per-ip and --ssh-max-unauthenticated must be positive")
	}
	if c.MirrorMaxSyncs <= 0 {
		return errors.New("--mirror-max-syncs must be positive")
	}
	if c.HTTPBodyTimeout <= 0 {
		return errors.New("--http-body-timeout must be positive")
	}
	if _, err := gitserver.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %v", err)
	}
	if err := validateDatabaseURL(c.DatabaseURL); err != nil {
		return err
	}
	if c.DatabaseMaxConns <= 0 {
		return errors.New("--database-max-conns must be positive")
	}
	if c.MaxPushMB <= 0 {
		return errors.New("--max-push-mb must be positive")
	}
	return nil
}

// readConfigFile reads "name = value" lines; # starts a comment; values may
// be double-quoted. Unknown names are errors.
func readConfigFile(path string, fs *flag.FlagSet) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want \"name = value\"", path, n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if fs.Lookup(k) == nil || k == "config" {
			return nil, fmt.Errorf("%s:%d: unknown setting %q", path, n, k)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return out, nil
}

// parseInterspersed parses flags that may come before or after positional
// arguments (as git does) and returns the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Re-parse with no arguments so fs.Args() reports the positionals.
	fs.Parse(append([]string{"--"}, pos...))
	return pos, nil
}
