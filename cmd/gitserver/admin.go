package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gitserver/store"
	"gitserver/store/sqlite"
)

const adminUsage = `usage:
  gitserver admin user create NAME [--admin] [--password-stdin]
  gitserver admin user passwd NAME [--password-stdin]
  gitserver admin token create NAME [--scope SCOPE]... [--name LABEL]
  gitserver admin key add NAME --file KEY.pub
flags common to all: --data DIR (or GITSERVER_DATA; default ./gitserver-data)
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
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", "", "data directory")
	isAdmin := fs.Bool("admin", false, "make the user a site admin")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	var scopes multiFlag
	fs.Var(&scopes, "scope", "token scope (repeatable)")
	label := fs.String("name", "", "token label")
	keyFile := fs.String("file", "", "SSH public key file")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	if err != nil {
		return usageError{err.Error()}
	}
	if *data == "" {
		*data = os.Getenv("GITSERVER_DATA")
	}
	if *data == "" {
		*data = "./gitserver-data"
	}
	if len(pos) < 3 {
		return usageError{"missing arguments"}
	}
	cmd, name := pos[0]+" "+pos[1], pos[2]
	if len(pos) > 3 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[3])}
	}
	switch cmd {
	case "user create", "user passwd", "token create", "key add":
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	// Every command works on an existing server's data directory; none
	// creates one (a user created into a new, empty directory would also
	// stop the first start from creating the admin account).
	if fi, err := os.Stat(*data); err != nil || !fi.IsDir() {
		return fmt.Errorf("data directory %s not found (set --data or GITSERVER_DATA)", *data)
	}
	db := dataPaths{root: *data}.db()
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("data directory %s holds no gitserver database; start `gitserver serve --data %s` once first (or set --data or GITSERVER_DATA to the server's data directory)", *data, *data)
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		return err
	}
	defer s.Close()

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

	switch cmd {
	case "user create":
		pw, generated, err := readPassword()
		if err != nil {
			return err
		}
		u, err := s.CreateUser(ctx, name, pw, *isAdmin)
		if err != nil {
			return err
		}
		s.Audit(ctx, "cli", "user.create", u.Name, fmt.Sprintf("admin=%v", u.IsAdmin))
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
		u, err := s.UserByName(ctx, name)
		if err != nil {
			return err
		}
		if err := s.SetPassword(ctx, u.Name, pw); err != nil {
			return err
		}
		s.Audit(ctx, "cli", "user.passwd", u.Name, "")
		if generated {
			fmt.Fprintf(stdout, "new password for %s: %s\n", u.Name, pw)
		} else {
			fmt.Fprintf(stdout, "password of %s changed\n", u.Name)
		}
	case "token create":
		u, err := s.UserByName(ctx, name)
		if err != nil {
			return err
		}
		var scs []store.Scope // validated by CreateToken
		for _, sc := range scopes {
			scs = append(scs, store.Scope(sc))
		}
		secret, tok, err := s.CreateToken(ctx, u.ID, *label, scs)
		if err != nil {
			return err
		}
		s.Audit(ctx, "cli", "token.create", u.Name, tok.Name+" "+store.JoinScopes(tok.Scopes))
		fmt.Fprintln(stdout, secret)
	case "key add":
		if *keyFile == "" {
			return usageError{"key add needs --file KEY.pub"}
		}
		u, err := s.UserByName(ctx, name)
		if err != nil {
			return err
		}
		text, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		pk, err := store.ParseSSHKey(string(text))
		if err != nil {
			return err
		}
		k, err := s.AddKey(ctx, store.NewKey{UserID: u.ID, Title: pk.Comment, Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey})
		if err != nil {
			return err
		}
		s.Audit(ctx, "cli", "key.add", u.Name, k.Fingerprint)
		fmt.Fprintf(stdout, "added key %s for %s\n", k.Fingerprint, u.Name)
	}
	return nil
}
