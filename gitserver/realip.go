package gitserver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies reads --trusted-proxies: comma-separated IP addresses
// and CIDR prefixes (an address is a prefix of its full length).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address or a CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// WithTrustedProxies makes r.RemoteAddr the client's address when the
// request came through trusted reverse proxies (the TLS terminator in
// front of the server): the rightmost X-Forwarded-For address that is not
// itself a trusted proxy, as nginx's real_ip_recursive and Gitea's
// REVERSE_PROXY_TRUSTED_PROXIES do. Everything that keys on the client
// (the sign-in throttles, the request log) then sees the user, not the
// proxy: without it, every user behind the proxy shares one throttle, and
// 20 wrong passwords from anyone lock out everyone. A request from an
// address outside trusted keeps its RemoteAddr whatever its headers say
// (anyone can send X-Forwarded-For). No trusted proxies: next unchanged.
func WithTrustedProxies(next http.Handler, trusted []netip.Prefix) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if client, ok := forwardedClient(r, isTrusted); ok {
			r2 := *r
			r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient walks X-Forwarded-For from the right while the hop that
// added the entry is trusted, and returns the last address reached (ok
// false: the peer itself is not trusted, or there is no usable entry).
func forwardedClient(r *http.Request, isTrusted func(netip.Addr) bool) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer) {
		return netip.Addr{}, false
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client, found := peer, false
	for i := len(hops) - 1; i >= 0 && isTrusted(client); i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil || a.Zone() != "" {
			break // a malformed entry: the last trusted hop is all we know
		}
		client, found = a.Unmap(), true
	}
	return client, found
}
