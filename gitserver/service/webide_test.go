package service_test

import (
	"errors"
	"strings"
	"testing"

	"gitserver/gitserver/service"
	"gitserver/store"
)

func TestCheckFilePath(t *testing.T) {
	for _, ok := range []string{"a.txt", "a/b/c.txt", ".github/workflows/ci.yml", "a b/ü.md", ".gitignore", "x..y", strings.Repeat("a", 255),
		".git.x", "git~10", "x.git", "git~1x", ".gitx:y"} {
		if err := service.CheckFilePath(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for p, want := range map[string]string{
		"":                            "file name is required",
		"/a":                          "must not start with /",
		"a/":                          "must not end with /",
		"a//b":                        "empty folder name",
		"a/../b":                      `"." and ".." are not allowed`,
		"./a":                         `"." and ".." are not allowed`,
		".git/config":                 `".git" is not allowed`,
		"sub/.Git/HEAD":               `".git" is not allowed`,
		".git./x":                     `".git" is not allowed`,
		"a/.GIT . /x":                 `".git" is not allowed`,
		"a/.git::$INDEX_ALLOCATION/x": `".git" is not allowed`,
		"GIT~1/config":                `".git" is not allowed`,
		"a/git~1. :x/b":               `".git" is not allowed`,
		"a\x00b":                      "control characters",
		"a\nb":                        "control characters",
		`a\b`:                         "use / to separate folders",
		strings.Repeat("a", 256):      "longer than 255 bytes",
		strings.Repeat("a/", 600):     "longer than 1024 bytes",
		"\xff":                        "not valid UTF-8",
	} {
		err := service.CheckFilePath(p)
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", p, err, want)
		}
	}
}

func TestNoreplyEmail(t *testing.T) {
	for base, want := range map[string]string{
		"https://Git.Example.com:8443/x": "erin@users.noreply.git.example.com",
		"":                               "erin@users.noreply.localhost",
		"http://[::1]:8080":              "erin@users.noreply.localhost", // no domain: as without a host
		"http://10.0.0.5:8080":           "erin@users.noreply.10.0.0.5",
	} {
		if got := service.NoreplyEmail("erin", base); got != want {
			t.Errorf("%q: %q, want %q", base, got, want)
		}
	}
}
