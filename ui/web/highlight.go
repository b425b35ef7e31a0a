package web

import (
	"container/list"
	"crypto/sha256"
	"html/template"
	"sync"
)

// Highlighting is the blob page's hot spot: chroma's lexers run regular
// expressions (regexp2) token by token, about 0.4 MB/s of CPU here (a
// 48 KB Go file: ~120 ms; go-git's repository.go measured 544 ms p50 on
// the loaded bench machine, docs/benchmarks.md "Web pages"). A file's
// highlighting depends only on its name and bytes, so renders of files
// of at least highlightCacheMin bytes are kept by content (LRU, at most
// highlightCacheBytes of HTML); files over maxHighlightBytes are shown as
// plain text (same markup, no lexing), which bounds what one request can
// cost.
const (
	highlightCacheMin   = 4 << 10
	highlightCacheBytes = 16 << 20
	maxHighlightBytes   = 256 << 10
)

var highlights = &htmlCache{max: highlightCacheBytes}

// Highlight renders a file's text as HTML with chroma's classes, the lexer
// chosen by the file name (plain text when none matches, or when src is
// larger than maxHighlightBytes).
func Highlight(name string, src []byte) (template.HTML, error) {
	if len(src) < highlightCacheMin {
		return highlight(name, src)
	}
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(src)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	if html, ok := highlights.get(key); ok {
		return html, nil
	}
	html, err := highlight(name, src)
	if err == nil {
		highlights.put(key, html)
	}
	return html, err
}

// htmlCache is a size-bounded LRU of rendered HTML.
type htmlCache struct {
	mu    sync.Mutex
	max   int // bytes of HTML
	size  int
	ll    list.List // of *htmlEntry, most recent first
	items map[[sha256.Size]byte]*list.Element
	hits  int
}

type htmlEntry struct {
	key  [sha256.Size]byte
	html template.HTML
}

func (c *htmlCache) get(key [sha256.Size]byte) (template.HTML, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return "", false
	}
	c.ll.MoveToFront(e)
	c.hits++
	return e.Value.(*htmlEntry).html, true
}

func (c *htmlCache) put(key [sha256.Size]byte, html template.HTML) {
	if len(html) > c.max/4 {
		return // one file may not push out most of the others
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[[sha256.Size]byte]*list.Element{}
	}
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.ll.PushFront(&htmlEntry{key, html})
	c.size += len(html)
	for c.size > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		e := old.Value.(*htmlEntry)
		delete(c.items, e.key)
		c.size -= len(e.html)
	}
}
