package web

import (
	"strings"
	"testing"
)

// TestHighlightCache: a file rendered twice is lexed once and both answers
// are what the uncached render gives; small files are not kept; the LRU
// stays within its bound; files over maxHighlightBytes are plain text.
func TestHighlightCache(t *testing.T) {
	src := []byte("package main\n\n" + strings.Repeat("// Greet says hello.\nfunc Greet() string { return \"<hello>\" }\n", 200))
	want, err := highlight("big.go", src)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(want), `<span class="kd">func</span>`) {
		t.Fatalf("not highlighted: %.300s", want)
	}
	hits := func() int { highlights.mu.Lock(); defer highlights.mu.Unlock(); return highlights.hits }
	before := hits()
	for i := 0; i < 2; i++ {
		got, err := Highlight("big.go", src)
		if err != nil || got != want {
			t.Fatalf("render %d differs from the uncached one (err %v)", i, err)
		}
	}
	if h := hits() - before; h != 1 {
		t.Errorf("cache hits = %d, want 1 (the second render)", h)
	}
	// Same bytes under a name with another lexer: another entry.
	if got, _ := Highlight("big.txt", src); strings.Contains(string(got), `class="kd"`) {
		t.Error("big.txt got the Go lexer's render")
	}
	small := []byte("package main\n")
	before = hits()
	Highlight("small.go", small)
	Highlight("small.go", small)
	if hits() != before {
		t.Error("a small file was cached")
	}

	c := &htmlCache{max: 100}
	for i := range 10 {
		c.put([32]byte{byte(i)}, "0123456789abcdefghij") // 20 bytes each
	}
	if c.size > 100 || len(c.items) != 5 || c.ll.Len() != 5 {
		t.Errorf("LRU over its bound: size %d, %d items", c.size, len(c.items))
	}
	if _, ok := c.get([32]byte{9}); !ok {
		t.Error("the newest entry was evicted")
	}
	if _, ok := c.get([32]byte{0}); ok {
		t.Error("the oldest entry was kept")
	}

	huge := []byte(strings.Repeat("func f() {}\n", maxHighlightBytes/12+1))
	got, err := Highlight("huge.go", huge)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), `class="kd"`) || !strings.Contains(string(got), "func f() {}") {
		t.Errorf("a file over %d bytes was lexed: %.200s", maxHighlightBytes, got)
	}
}
