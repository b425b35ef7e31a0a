package packcache

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// Counters kept in DIR/stats. The hook runs as a separate process per
// request, so the counters live in a small file updated under flock.
const (
	statHit   = iota // served from a complete entry
	statMiss         // produced (ran pack-objects and wrote an entry)
	statJoin         // streamed from a running producer
	statEvict        // entries removed to keep the size cap
	statFirst        // served without caching: the key was not seen often enough yet
	numStats
)

// Stats are the cache's counters since the directory was created.
type Stats struct {
	Hits, Misses, Joins, Evictions uint64
	// Uncached counts requests served without writing an entry because
	// their key had not been seen MinOccurrences times before.
	Uncached uint64
}

func (c *Cache) count(which int) {
	f, err := os.OpenFile(filepath.Join(c.Dir, "stats"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX) != nil {
		return
	}
	var b [8 * numStats]byte
	f.ReadAt(b[:], 0) // short at first: zeros
	v := binary.BigEndian.Uint64(b[which*8:])
	binary.BigEndian.PutUint64(b[which*8:], v+1)
	f.WriteAt(b[:], 0)
}

// ReadStats reads the counters of the cache in dir.
func ReadStats(dir string) Stats {
	var b [8 * numStats]byte
	if f, err := os.Open(filepath.Join(dir, "stats")); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
		f.ReadAt(b[:], 0)
		f.Close()
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[i*8:]) }
	return Stats{Hits: u(statHit), Misses: u(statMiss), Joins: u(statJoin), Evictions: u(statEvict), Uncached: u(statFirst)}
}

// Collector exports the counters of the cache in dir as
// gitserver_pack_cache_requests_total{result="hit|miss|join|uncached"} and
// gitserver_pack_cache_evictions_total.
func Collector(dir string) prometheus.Collector { return collector{dir, reqDesc} }

// ResponsesCollector exports the counters of the response cache (Responses)
// in dir as gitserver_response_cache_requests_total{result="hit|miss|join|uncached"}.
func ResponsesCollector(dir string) prometheus.Collector { return collector{dir, respDesc} }

type collector struct {
	dir string
	req *prometheus.Desc
}

var (
	reqDesc = prometheus.NewDesc("gitserver_pack_cache_requests_total",
		"Pack requests seen by the pack-objects cache, by result.", []string{"result"}, nil)
	respDesc = prometheus.NewDesc("gitserver_response_cache_requests_total",
		"Clone requests seen by the response cache (answered without git on a hit), by result.", []string{"result"}, nil)
	evictDesc = prometheus.NewDesc("gitserver_pack_cache_evictions_total",
		"Pack cache entries evicted to keep the size cap.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.req
	if c.req == reqDesc {
		ch <- evictDesc
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := ReadStats(c.dir)
	ch <- prometheus.MustNewConstMetric(c.req, prometheus.CounterValue, float64(s.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(c.req, prometheus.CounterValue, float64(s.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(c.req, prometheus.CounterValue, float64(s.Joins), "join")
	ch <- prometheus.MustNewConstMetric(c.req, prometheus.CounterValue, float64(s.Uncached), "uncached")
	if c.req == reqDesc {
		ch <- prometheus.MustNewConstMetric(evictDesc, prometheus.CounterValue, float64(s.Evictions))
	}
}
