package packcache

import (
	"bytes"
	"path/filepath"
	"testing"
)

// With MinOccurrences 1 a one-off request writes nothing to disk; the second
// identical request fills the cache and the third is a hit, all with the
// same, valid pack.
func TestMinOccurrencesKeepsOneOffRequestsOffDisk(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 20)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache"), MinOccurrences: 1}
	head := ids[len(ids)-1]

	var packs [][]byte
	want := []Stats{{Uncached: 1}, {Uncached: 1, Misses: 1}, {Uncached: 1, Misses: 1, Hits: 1}}
	wantEntries := []int{0, 1, 1}
	for i := range 3 {
		pack, errs, code := serve(t, c, request(repo, head))
		if code != 0 {
			t.Fatalf("request %d: exit %d: %s", i+1, code, errs)
		}
		if st := ReadStats(c.Dir); st != want[i] {
			t.Fatalf("after request %d: %+v, want %+v", i+1, st, want[i])
		}
		if got := len(packFiles(t, c.Dir, ".pack")); got != wantEntries[i] {
			t.Fatalf("after request %d: %d cache entries, want %d", i+1, got, wantEntries[i])
		}
		packs = append(packs, pack)
	}
	if !bytes.Equal(packs[0], packs[1]) || !bytes.Equal(packs[1], packs[2]) {
		t.Fatal("uncached, producing and cached answers differ")
	}
	if n := indexPack(t, packs[2]); n == 0 {
		t.Fatal("empty pack")
	}
	// Another key is again a first sighting.
	if _, errs, code := serve(t, c, request(repo, ids[5])); code != 0 {
		t.Fatalf("other key: exit %d: %s", code, errs)
	}
	if st := ReadStats(c.Dir); st.Uncached != 2 || st.Misses != 1 {
		t.Fatalf("other key: %+v, want a second uncached request", st)
	}
}
