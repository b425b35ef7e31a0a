package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gitserver/gitserver/service"
	"gitserver/store"
	"gitserver/ui/wire"
)

const adminUsage = `usage:
  gitserver admin user create NAME [--admin] [--password-stdin]
  gitserver admin user passwd NAME [--password-stdin]
  gitserver admin user disable NAME
  gitserver admin user enable NAME
  gitserver admin token create NAME [--scope SCOPE]... [--name LABEL]
  gitserver admin token list NAME
  gitserver admin token revoke NAME ID
  gitserver admin key add NAME --file KEY.pub
  gitserver admin secrets rotate      (with the server stopped)
  gitserver admin scm add --name NAME --kind KIND [--mode webhook|api] --website-url URL --api-url URL
        --ssh-url ssh://git@HOST:PORT [--client-id ID | --project-key KEY] [--allowed-owner OWNER]...
        --secret-stdin   (the client secret, or Bitbucket Server's access token, on stdin's first line)
  gitserver admin scm list
  gitserver admin scm show ID
  gitserver admin scm remove ID [--force]   (--force turns the repositories using it into plain mirrors)
  gitserver admin backup --out FILE        (while the server runs; FILE.gz or .tgz is compressed)
  gitserver admin restore --from FILE --data DIR   (into a new, empty data directory)
flags common to all: --data DIR (or GITSERVER_DATA; default ./gitserver-data),
  --secret-key-file FILE (or GITSERVER_SECRET_KEY_FILE; default DIR/secret.key),
  --database-url postgres://... (or GITSERVER_DATABASE_URL; default the SQLite file in DIR),
  --repos-dir DIR (or GITSERVER_REPOS_DIR; default DIR/repos),
  --config FILE (or GITSERVER_CONFIG: the server's config file, for the settings above)
`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func admin(args []string) int {
	err := adminRun(args, os.Stdin, os.Stdout)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(adminUsage)
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "gitserver admin: %v\n\n%s", err, adminUsage)
		return 2
	}
	fmt.Fprintln(os.Stderr, "gitserver admin:", strings.TrimPrefix(err.Error(), "store: "))
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func adminRun(args []string, stdin io.Reader, stdout io.Writer) error {
	if cmd, ok := backupCommand(args); ok {
		return adminBackup(cmd, args, stdout, os.Stderr) // backup.go
	}
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", "", "data directory")
	isAdmin := fs.Bool("admin", false, "make the user a site admin")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	var scopes multiFlag
	fs.Var(&scopes, "scope", "token scope (repeatable)")
	label := fs.String("name", "", "token label")
	keyFile := fs.String("file", "", "SSH public key file")
	secretKeyFile := fs.String("secret-key-file", "", "secret key file")
	scmKind := fs.String("kind", "", "SCM kind")
	scmMode := fs.String("mode", "", "Bitbucket Server mode")
	websiteURL := fs.String("website-url", "", "SCM website URL")
	apiURL := fs.String("api-url", "", "SCM API URL")
	sshURL := fs.String("ssh-url", "", "SCM SSH URL")
	clientID := fs.String("client-id", "", "OAuth client id")
	projectKey := fs.String("project-key", "", "Bitbucket Server project key")
	var allowedOwners multiFlag
	fs.Var(&allowedOwners, "allowed-owner", "owner users may create under (repeatable)")
	secretStdin := fs.Bool("secret-stdin", false, "read the SCM secret from the first line of stdin")
	force := fs.Bool("force", false, "remove a configuration in use")
	dbURL := fs.String("database-url", "", "PostgreSQL database URL")
	reposDir := fs.String("repos-dir", "", "repository root")
	configPath := fs.String("config", "", "the server's config file")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	if err != nil {
		return usageError{err.Error()}
	}
	// The server's settings that say where its data is, read as serve
	// reads them: flag, then environment, then the config file.
	if *configPath == "" {
		*configPath = os.Getenv("GITSERVER_CONFIG")
	}
	var file map[string]string
	if *configPath != "" {
		var sc config
		if file, err = readConfigFile(*configPath, serveFlags(&sc)); err != nil {
			return err
		}
	}
	for _, v := range []struct {
		p    *string
		name string
	}{{data, "data"}, {secretKeyFile, "secret-key-file"}, {dbURL, "database-url"}, {reposDir, "repos-dir"}} {
		if *v.p == "" {
			*v.p = os.Getenv(envName(v.name))
		}
		if *v.p == "" {
			*v.p = file[v.name]
		}
	}
	if *data == "" {
		*data = "./gitserver-data"
	}
	if err := validateDatabaseURL(*dbURL); err != nil {
		return err
	}
	stc := storeConfig{DatabaseURL: *dbURL, MaxConns: 2}
	if len(pos) < 2 {
		return usageError{"missing arguments"}
	}
	cmd, nargs := pos[0]+" "+pos[1], 3
	switch cmd {
	case "user create", "user passwd", "user disable", "user enable", "token create", "token list", "key add":
	case "token revoke":
		nargs = 4
	case "secrets rotate", "scm add", "scm list":
		nargs = 2
	case "scm show", "scm remove":
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	if cmd == "token revoke" && len(pos) == 3 {
		return usageError{"token revoke needs the token's ID (see token list)"}
	}
	if len(pos) < nargs {
		return usageError{"missing arguments"}
	}
	if len(pos) > nargs {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[nargs])}
	}
	var name string
	if nargs >= 3 {
		name = pos[2]
	}
	var tokenID, scmID int64
	if cmd == "scm show" || cmd == "scm remove" {
		id, err := strconv.ParseInt(pos[2], 10, 64)
		if err != nil || id <= 0 {
			return usageError{fmt.Sprintf("configuration ID %q is not a number (see scm list)", pos[2])}
		}
		scmID = id
	}
	if cmd == "token revoke" {
		id, err := strconv.ParseInt(pos[3], 10, 64)
		if err != nil || id <= 0 {
			return usageError{fmt.Sprintf("token ID %q is not a number (see token list)", pos[3])}
		}
		tokenID = id
	}
	// Every command works on an existing server's data directory; none
	// creates one (a user created into a new, empty directory would also
	// stop the first start from creating the admin account).
	if fi, err := os.Stat(*data); err != nil || !fi.IsDir() {
		return fmt.Errorf("data directory %s not found (set --data or GITSERVER_DATA)", *data)
	}
	d := dataPaths{root: *data}
	if *reposDir != "" {
		if d.reposDir, err = filepath.Abs(*reposDir); err != nil {
			return err
		}
	}
	if !storeExists(stc, d) {
		return fmt.Errorf("data directory %s holds no gitserver database; start `gitserver serve --data %s` once first (or set --data or GITSERVER_DATA to the server's data directory)", *data, *data)
	}
	ctx := context.Background()
	keyPath := secretKeyPath(*secretKeyFile, d)
	if cmd == "secrets rotate" {
		return rotateSecrets(ctx, stc, d, keyPath, stdout)
	}
	// The key is loaded, never created: only the server and a rotation
	// create one.
	sealer, err := loadSecretKey(keyPath)
	if err != nil {
		return err
	}
	s, err := openDatabase(ctx, stc, d, sealer)
	if err != nil {
		return err
	}
	defer s.Close()
	// The same operations as the API's, as the machine's operator: each
	// change commits with its audit event or not at all, so a change whose
	// audit event cannot be written fails the command.
	svc := &service.Service{Store: s, SCM: scmFactory(scmHTTPClient), HostKeys: scmHostKeys{}, HTTPClient: scmHTTPClient}
	cli := service.Operator("cli")

	readPassword := func() (string, bool, error) {
		if !*pwStdin {
			return generatePassword(), true, nil
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", false, errors.New("--password-stdin: no password on stdin")
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}

	if strings.HasPrefix(cmd, "scm ") {
		return adminSCM(ctx, svc, cli, cmd, scmID, stdin, stdout, scmAddFlags{name: *label, kind: *scmKind, mode: *scmMode,
			websiteURL: *websiteURL, apiURL: *apiURL, sshURL: *sshURL, clientID: *clientID, projectKey: *projectKey,
			allowedOwners: allowedOwners, secretStdin: *secretStdin, force: *force})
	}

	switch cmd {
	case "user create":
		pw, generated, err := readPassword()
		if err != nil {
			return err
		}
		u, err := svc.CreateUser(ctx, cli, name, pw, *isAdmin)
		if err != nil {
			return err
		}
		if generated {
			fmt.Fprintf(stdout, "created user %s; password: %s\n", u.Name, pw)
		} else {
			fmt.Fprintf(stdout, "created user %s\n", u.Name)
		}
	case "user passwd":
		pw, generated, err := readPassword()
		if err != nil {
			return err
		}
		u, err := svc.SetPassword(ctx, cli, name, pw)
		if err != nil {
			return err
		}
		if generated {
			fmt.Fprintf(stdout, "new password for %s: %s\n", u.Name, pw)
		} else {
			fmt.Fprintf(stdout, "password of %s changed\n", u.Name)
		}
	case "user disable", "user enable":
		u, err := svc.SetDisabled(ctx, cli, name, cmd == "user disable")
		if err != nil {
			return err
		}
		if u.Disabled {
			fmt.Fprintf(stdout, "disabled %s: its password, tokens and SSH keys are refused from now on\n", u.Name)
		} else {
			fmt.Fprintf(stdout, "enabled %s\n", u.Name)
		}
	case "token list":
		toks, _, err := svc.Tokens(ctx, cli, name)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", t.ID, t.Name, strings.ReplaceAll(store.JoinScopes(t.Scopes), " ", ","), t.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "token revoke":
		u, err := svc.RevokeToken(ctx, cli, name, tokenID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked token %d of %s\n", tokenID, u.Name)
	case "token create":
		secret, _, _, err := svc.CreateToken(ctx, cli, name, *label, scopes)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
	case "key add":
		if *keyFile == "" {
			return usageError{"key add needs --file KEY.pub"}
		}
		if _, err := s.UserByName(ctx, name); err != nil {
			return err // before the file, as always
		}
		text, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		k, u, err := svc.AddKey(ctx, cli, name, "", string(text))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added key %s for %s\n", k.Fingerprint, u.Name)
	}
	return nil
}

type scmAddFlags struct {
	name, kind, mode, websiteURL, apiURL, sshURL, clientID, projectKey string
	allowedOwners                                                      []string
	secretStdin, force                                                 bool
}

// adminSCM runs the scm commands: the service's configuration operations
// as the operator. Secrets come from stdin and are never printed.
func adminSCM(ctx context.Context, svc *service.Service, cli service.Actor, cmd string, id int64, stdin io.Reader, stdout io.Writer, f scmAddFlags) error {
	switch cmd {
	case "scm add":
		if f.name == "" || f.kind == "" {
			return usageError{"scm add needs --name and --kind"}
		}
		if !f.secretStdin {
			return usageError{"scm add needs --secret-stdin (the client secret, or for bitbucket-server the access token, on stdin)"}
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return errors.New("--secret-stdin: no secret on stdin")
		}
		secret := strings.TrimRight(line, "\r\n")
		in := service.SCMConfigInput{Name: &f.name, Kind: &f.kind, WebsiteURL: &f.websiteURL, APIURL: &f.apiURL, SSHURL: &f.sshURL}
		if f.mode != "" {
			in.Mode = &f.mode
		}
		if f.kind == "bitbucket-server" {
			in.ProjectKey, in.AccessToken = &f.projectKey, &secret
		} else {
			in.ClientID, in.ClientSecret = &f.clientID, &secret
		}
		owners := []string(f.allowedOwners)
		in.AllowedOwners = &owners
		c, err := svc.CreateSCMConfig(ctx, cli, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added SCM configuration %d (%s, %s); host keys pinned: %s\n", c.ID, c.Name, c.Kind, strings.Join(c.HostKeyFingerprints, ", "))
	case "scm list":
		cs, err := svc.SCMConfigs(ctx, cli)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tKIND\tMODE\tWEBSITE")
		for _, c := range cs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.Kind, c.Mode, c.WebsiteURL)
		}
		return tw.Flush()
	case "scm show":
		c, err := svc.SCMConfig(ctx, cli, id)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(wire.NewSCMConfig(c)) // no secrets: only whether they are set
	case "scm remove":
		unlinked, err := svc.DeleteSCMConfig(ctx, cli, id, f.force)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed SCM configuration %d\n", id)
		for _, r := range unlinked {
			fmt.Fprintf(stdout, "%s is now a plain mirror\n", r.FullName())
		}
	}
	return nil
}
