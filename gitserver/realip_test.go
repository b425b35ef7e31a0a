package gitserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,::1, 2001:db8::/32,::ffff:198.51.100.1,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "2001:db8::/32", "198.51.100.1/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"proxy.example.com", "10.0.0.0/33", "fe80::1%eth0", "10.0.0.1:8080"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if p, err := ParseTrustedProxies(""); err != nil || len(p) != 0 {
		t.Errorf("empty: %v, %v", p, err)
	}
}

func TestWithTrustedProxies(t *testing.T) {
	trusted, _ := ParseTrustedProxies("127.0.0.1, 10.0.0.0/8")
	var seen string
	h := WithTrustedProxies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }), trusted)
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer: headers ignored", "203.0.113.9:5555", []string{"198.51.100.1"}, "203.0.113.9:5555"},
		{"trusted peer, one hop", "127.0.0.1:5555", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"spoofed entries left of the client are not believed", "127.0.0.1:5555", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1:0"},
		{"a chain of trusted proxies", "127.0.0.1:5555", []string{"198.51.100.1, 10.1.2.3", "10.9.9.9"}, "198.51.100.1:0"},
		{"all hops trusted: the leftmost", "127.0.0.1:5555", []string{"10.0.0.5, 10.0.0.6"}, "10.0.0.5:0"},
		{"IPv6 client", "127.0.0.1:5555", []string{"2001:db8::1"}, "[2001:db8::1]:0"},
		{"IPv4-mapped client", "127.0.0.1:5555", []string{"::ffff:198.51.100.2"}, "198.51.100.2:0"},
		{"no header", "127.0.0.1:5555", nil, "127.0.0.1:5555"},
		{"malformed entry: the last trusted hop", "127.0.0.1:5555", []string{"198.51.100.1, garbage"}, "127.0.0.1:5555"},
		{"malformed beyond an untrusted client is not read", "127.0.0.1:5555", []string{"garbage, 198.51.100.1"}, "198.51.100.1:0"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if seen != tc.want {
			t.Errorf("%s: RemoteAddr %q, want %q", tc.name, seen, tc.want)
		}
	}
	// None trusted (the default): headers are never believed.
	h = WithTrustedProxies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }), nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != "127.0.0.1:5555" {
		t.Errorf("no trusted proxies: RemoteAddr %q", seen)
	}
}
