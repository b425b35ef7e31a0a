package mirror

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"gitserver/store"
)

// Remote is a validated upstream URL.
type Remote struct {
	// URL is the URL as given (what git fetches from, and what users see).
	URL  string
	User string // "" when the URL names none
	Host string
	Port int // 22 unless the URL says otherwise
	Path string
}

var (
	userRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`)
	hostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)
	// git reads "TRANSPORT::ADDRESS" as a remote helper (ext::, fd::).
	helperRe = regexp.MustCompile(`^[A-Za-z0-9+.-]*::`)
)

func invalid(format string, args ...any) error {
	return store.Errorf(store.ErrInvalid, format, args...)
}

// ParseURL validates an upstream URL: ssh://[user@]host[:port]/path or
// scp-like [user@]host:path. Local paths, other schemes, git's remote
// helpers ("ext::", "fd::"), and anything git or ssh could read as an
// option (a leading "-", whitespace or control characters, a host or user
// beginning with "-") are ErrInvalid with a message saying why.
func ParseURL(s string) (Remote, error) {
	const forms = `use ssh://git@HOST[:PORT]/OWNER/REPO.git or git@HOST:OWNER/REPO.git`
	switch {
	case s == "":
		return Remote{}, invalid("mirror.url is required: %s", forms)
	case len(s) > 2048:
		return Remote{}, invalid("mirror.url is longer than 2048 bytes")
	case strings.HasPrefix(s, "-"):
		return Remote{}, invalid("mirror.url must not begin with \"-\"")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return Remote{}, invalid("mirror.url must not contain whitespace or control characters")
	case helperRe.MatchString(s):
		return Remote{}, invalid("mirror.url must not name a git remote helper (\"TRANSPORT::ADDRESS\", e.g. ext::): %s", forms)
	}
	r := Remote{URL: s, Port: 22}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if strings.ToLower(scheme) != "ssh" {
			return Remote{}, invalid("mirror.url scheme %q is not supported: only SSH; %s", store.Truncate(scheme, 20), forms)
		}
		u, err := url.Parse("ssh://" + rest)
		if err != nil {
			return Remote{}, invalid("mirror.url is not a valid URL: %s", forms)
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				return Remote{}, invalid("mirror.url must not carry a password: the deploy key authenticates")
			}
			r.User = u.User.Username()
		}
		r.Host = u.Hostname()
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return Remote{}, invalid("mirror.url port must be between 1 and 65535")
			}
			r.Port = n
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return Remote{}, invalid("mirror.url must not have a query or fragment")
		}
		r.Path = u.Path
		if r.Path == "" || r.Path == "/" {
			return Remote{}, invalid("mirror.url names no repository path: %s", forms)
		}
	} else {
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~") {
			return Remote{}, invalid("mirror.url must not be a local path: %s", forms)
		}
		hostPart, path, ok := strings.Cut(s, ":")
		if !ok || strings.Contains(hostPart, "/") {
			return Remote{}, invalid("mirror.url must not be a local path: %s", forms)
		}
		if user, host, ok := strings.Cut(hostPart, "@"); ok {
			r.User, hostPart = user, host
			if r.User == "" {
				return Remote{}, invalid("mirror.url has an empty user name")
			}
		}
		r.Host, r.Path = hostPart, path
		if r.Path == "" {
			return Remote{}, invalid("mirror.url names no repository path: %s", forms)
		}
		if strings.HasPrefix(r.Path, "-") {
			return Remote{}, invalid("mirror.url repository path must not begin with \"-\"")
		}
	}
	switch {
	case r.Host == "":
		return Remote{}, invalid("mirror.url names no host: %s", forms)
	case strings.HasPrefix(r.Host, "-"):
		return Remote{}, invalid("mirror.url host must not begin with \"-\"")
	case net.ParseIP(r.Host) == nil && !hostRe.MatchString(r.Host):
		return Remote{}, invalid("mirror.url host %q is not a host name or IP address", store.Truncate(r.Host, 100))
	case r.User != "" && strings.HasPrefix(r.User, "-"):
		return Remote{}, invalid("mirror.url user must not begin with \"-\"")
	case r.User != "" && !userRe.MatchString(r.User):
		return Remote{}, invalid("mirror.url user name must match [A-Za-z0-9_][A-Za-z0-9._-]*")
	case strings.ContainsAny(r.Path, "'\"\\`$;|&<>*?!"):
		return Remote{}, invalid("mirror.url repository path contains a character that is not allowed (quotes, shell metacharacters)")
	}
	return r, nil
}

// KnownHostsName is how known_hosts names the upstream: "host", or
// "[host]:port" for a port other than 22.
func (r Remote) KnownHostsName() string {
	if r.Port == 22 {
		return r.Host
	}
	return "[" + r.Host + "]:" + strconv.Itoa(r.Port)
}
