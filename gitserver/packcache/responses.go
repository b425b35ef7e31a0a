package packcache

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// Responses caches whole upload-pack responses of the server process
// itself (smart HTTP), so that a hit is one file streamed to the client
// with no process at all: no upload-pack, no hook, no pack-objects. The
// caller (gitserver's HTTP handler) decides what may be cached and builds
// the key from the repository, the version of its refs and the normalized
// request; see gitserver/respcache.go.
//
// Entries use the files of Cache (KEY.pack with its trailer, KEY.part
// tailed by joiners, KEY.lock electing one producer, eviction by size and
// age) in their own directory. Two differences: a hit is handed to the
// caller as an open file and a length, to be copied with sendfile; and a
// producer does not fsync, so the first hit of an entry in a process
// (after a restart, say) checks the whole entry's CRC before it is ever
// sent, and entries this process wrote or checked are trusted from then on.
type Responses struct {
	Cache

	mu       sync.Mutex
	verified map[fileID]bool // complete entries whose CRC was checked or that we wrote
	seen     map[string]int  // MinOccurrences, in memory
}

type fileID struct {
	dev, ino uint64
	size     int64
}

func idOf(f *os.File) (fileID, bool) {
	st, err := f.Stat()
	if err != nil {
		return fileID{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(sys.Dev), uint64(sys.Ino), st.Size()}, true
}

// Outcome says how Serve answered.
type Outcome int

// Outcomes of Serve.
const (
	Hit      Outcome = iota // a complete entry, through hit
	Joined                  // streamed from a running producer
	Produced                // ran the request and wrote a new entry
	Uncached                // ran the request without writing an entry
)

func (o Outcome) String() string {
	return [...]string{"hit", "join", "miss", "uncached"}[o]
}

// Exchange is what Serve needs from its caller for one request.
type Exchange struct {
	// Hit sends a complete entry: the first n bytes of f (the caller sets
	// Content-Length and copies with io.Copy so that the platform's
	// sendfile is used).
	Hit func(f *os.File, n int64) error
	// Out is the client, for a joined or produced response.
	Out io.Writer
	// Run answers the request by running git, writing the response to w.
	// The producer's w keeps accepting bytes after the client has gone
	// (others may be waiting for the entry).
	Run func(w io.Writer) error
	// StillValid is asked after Run succeeded: false (the refs moved
	// meanwhile) and the response is not kept.
	StillValid func() bool
}

const maxSeen = 100000

// seenEnough is MinOccurrences kept in memory.
func (rc *Responses) seenEnough(key string) bool {
	if rc.MinOccurrences <= 0 {
		return true
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil || len(rc.seen) > maxSeen {
		rc.seen = map[string]int{}
	}
	n := rc.seen[key]
	if n >= rc.MinOccurrences {
		return true
	}
	rc.seen[key] = n + 1
	return false
}

func (rc *Responses) isVerified(id fileID) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.verified[id]
}

func (rc *Responses) setVerified(id fileID) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.verified == nil || len(rc.verified) > maxSeen {
		rc.verified = map[fileID]bool{}
	}
	rc.verified[id] = true
}

// checkCRC reads a complete entry and compares its CRC with its trailer.
func checkCRC(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Size() < trailerLen {
		return false
	}
	n := st.Size() - trailerLen
	crc := crc32.New(castagnoli)
	if _, err := io.Copy(crc, io.NewSectionReader(f, 0, n)); err != nil {
		return false
	}
	var t [trailerLen]byte
	if _, err := f.ReadAt(t[:], n); err != nil {
		return false
	}
	return binary.BigEndian.Uint32(t[24:28]) == crc.Sum32()
}

// Serve answers the request with key: from a complete entry, from a
// running producer, or by running it (writing an entry once the key has
// been seen MinOccurrences times before). An error after bytes were sent
// means the client got a truncated response, which git rejects.
func (rc *Responses) Serve(key string, x Exchange) (Outcome, error) {
	if err := os.MkdirAll(rc.Dir, 0o750); err != nil {
		return Uncached, x.Run(x.Out)
	}
	packPath, partPath, lockPath := rc.paths(key)
	deadline := time.Now().Add(joinTimeout)
	for time.Now().Before(deadline) {
		if f, ok := rc.openComplete(packPath); ok {
			return Hit, rc.hit(f, packPath, x)
		}
		lk, err := tryLock(lockPath)
		if err != nil {
			break
		}
		if lk != nil {
			if f, ok := rc.openComplete(packPath); ok {
				lk.Close()
				return Hit, rc.hit(f, packPath, x)
			}
			if !rc.seenEnough(key) {
				lk.Close()
				rc.count(statFirst)
				return Uncached, x.Run(x.Out)
			}
			rc.count(statMiss)
			err := rc.produce(key, x)
			lk.Close()
			if err == nil {
				rc.evict(packPath)
			}
			return Produced, err
		}
		f, err := os.Open(partPath)
		if err != nil {
			time.Sleep(pollEvery)
			continue
		}
		if !locked(f) {
			if valid(f, 0) {
				return Hit, rc.hit(f, packPath, x)
			}
			f.Close()
			time.Sleep(pollEvery)
			continue
		}
		rc.count(statJoin)
		defer f.Close()
		return Joined, rc.join(f, packPath, x.Out)
	}
	rc.count(statFirst)
	return Uncached, x.Run(x.Out)
}

// hit sends a complete entry through x.Hit, checking its CRC first if this
// process has not written or checked it.
func (rc *Responses) hit(f *os.File, packPath string, x Exchange) error {
	defer f.Close()
	id, ok := idOf(f)
	if !ok {
		return x.Run(x.Out)
	}
	if !rc.isVerified(id) {
		if !checkCRC(f) {
			removeSame(f, packPath)
			rc.count(statFirst)
			return x.Run(x.Out)
		}
		rc.setVerified(id)
	}
	rc.count(statHit)
	now := time.Now()
	os.Chtimes(packPath, now, now)
	return x.Hit(f, id.size-trailerLen)
}

func (rc *Responses) join(f *os.File, packPath string, w io.Writer) error {
	err := copyEntry(f, w)
	if errors.Is(err, errCorrupt) {
		removeSame(f, packPath)
	}
	return err
}

// removeSame removes path if it is still the file f.
func removeSame(f *os.File, path string) {
	if st, err := f.Stat(); err == nil {
		if pst, err := os.Stat(path); err == nil && os.SameFile(st, pst) {
			os.Remove(path)
		}
	}
}

// produce runs the request, streaming the response to the client and into
// KEY.part (which joiners tail); the entry is published as KEY.pack only if
// Run succeeded and StillValid holds. The caller holds KEY.lock.
func (rc *Responses) produce(key string, x Exchange) error {
	packPath, partPath, _ := rc.paths(key)
	tmp, err := os.CreateTemp(rc.Dir, key+".*.tmp")
	if err != nil {
		return x.Run(x.Out)
	}
	if err := syscall.Flock(int(tmp.Fd()), syscall.LOCK_EX); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return x.Run(x.Out)
	}
	if err := os.Rename(tmp.Name(), partPath); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return x.Run(x.Out)
	}
	f := tmp
	t := &teeEntry{f: f, crc: crc32.New(castagnoli), client: x.Out}
	runErr := x.Run(t)
	fail := func() {
		os.Remove(partPath)
		f.Close() // releases the lock: joiners find no trailer and fail
	}
	if runErr != nil || t.fileErr != nil {
		fail()
		if runErr == nil && t.clientErr != nil {
			return t.clientErr
		}
		return runErr
	}
	var tr [trailerLen]byte
	copy(tr[:8], magic)
	binary.BigEndian.PutUint64(tr[8:16], uint64(t.n))
	binary.BigEndian.PutUint64(tr[16:24], uint64(time.Now().Unix()))
	binary.BigEndian.PutUint32(tr[24:28], t.crc.Sum32())
	if _, err := f.Write(tr[:]); err != nil {
		fail()
		return t.clientErr
	}
	if !x.StillValid() {
		// The refs moved while git ran: the response is a valid answer
		// for the requests that already have it (this one and those
		// that joined, all made before the refs moved, as if they had
		// raced the push in git itself), but it must not answer any
		// later request. Joiners read the trailer from the unlinked file.
		os.Remove(partPath)
		f.Close()
		return t.clientErr
	}
	if id, ok := idOf(f); ok {
		rc.setVerified(id)
	}
	if err := os.Rename(partPath, packPath); err != nil {
		fail()
		return t.clientErr
	}
	f.Close() // joiners check the trailer
	return t.clientErr
}

// teeEntry writes a produced response to the cache file and to the client;
// a failing client does not stop the production.
type teeEntry struct {
	f         *os.File
	crc       hashWriter
	client    io.Writer
	n         int64
	fileErr   error
	clientErr error
}

type hashWriter interface {
	io.Writer
	Sum32() uint32
}

func (t *teeEntry) Write(p []byte) (int, error) {
	if t.fileErr == nil {
		if _, err := t.f.Write(p); err != nil {
			t.fileErr = err
		}
	}
	t.crc.Write(p)
	t.n += int64(len(p))
	if t.clientErr == nil {
		if _, err := t.client.Write(p); err != nil {
			t.clientErr = err
		}
	}
	if t.fileErr != nil && t.clientErr != nil {
		return 0, t.clientErr // nobody left to write for
	}
	return len(p), nil
}
