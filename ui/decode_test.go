package ui

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeContentType(t *testing.T) {
	for _, tc := range []struct {
		ct     string
		body   string
		status int // 0: decoded
	}{
		{"application/json", `{"a":1}`, 0},
		{"application/json; charset=utf-8", `{"a":1}`, 0},
		{"APPLICATION/JSON; Charset=UTF-8", `{"a":1}`, 0},
		{"text/plain", `{"a":1}`, 415},
		{"text/plain; charset=utf-8", `{"a":1}`, 415},
		{"application/x-www-form-urlencoded", `{"a":1}`, 415},
		{"multipart/form-data; boundary=x", `{"a":1}`, 415},
		{"", `{"a":1}`, 415},
		{"application/json; charset=iso-8859-1", `{"a":1}`, 415},
		{"application/json; foo=bar", `{"a":1}`, 415},
		{"application/json;", `{"a":1}`, 0}, // mime accepts the empty parameter list
		{"application/json-seq", `{"a":1}`, 415},
		{"", ``, 400}, // no body: refused as empty, not for its type
	} {
		r := httptest.NewRequest("POST", "/api/v1/user/keys", strings.NewReader(tc.body))
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		w := httptest.NewRecorder()
		var v struct{ A int }
		ok := decode(w, r, &v)
		switch {
		case tc.status == 0 && (!ok || v.A != 1):
			t.Errorf("Content-Type %q: not decoded: %d %s", tc.ct, w.Code, w.Body)
		case tc.status != 0 && (ok || w.Code != tc.status):
			t.Errorf("Content-Type %q body %q: ok=%v %d %s, want %d", tc.ct, tc.body, ok, w.Code, w.Body, tc.status)
		case tc.status == 415 && !strings.Contains(w.Body.String(), `"unsupported_media_type"`):
			t.Errorf("Content-Type %q: %s, want code unsupported_media_type", tc.ct, w.Body)
		}
	}
}
