package main

// -repack: full gc vs geometric repacking of the large repository after
// many pushes (issue 15), and what each leaves for clones.

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var flagRepack = flag.Int("repack", 0, "also measure maintenance after N small pushes to the large repository: full gc vs geometric repack (0: skip)")

// packTime is the median wall time of the server-side pack generation of
// a full clone (what upload-pack runs), 3 runs.
func packTime(dir string) float64 {
	wants := gitOut(dir, "for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags")
	var ts []float64
	for range 3 {
		cmd := gitCmd(dir, "pack-objects", "--revs", "--stdout", "--thin", "--delta-base-offset", "--include-tag", "-q")
		cmd.Stdin = strings.NewReader(wants + "\n")
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return -1
		}
		ts = append(ts, time.Since(t0).Seconds())
	}
	return median(ts)
}

func repackBench(tmp, srcLarge string, pushes int) ([]result, error) {
	base := filepath.Join(tmp, "repack-base.git")
	if err := gitRun("", "clone", "-q", "--mirror", srcLarge, base); err != nil {
		return nil, err
	}
	logf("repack: full gc of the base (as gitserver's first maintenance)")
	if err := gitRun(base, "-c", "repack.writeBitmaps=true", "-c", "pack.writeBitmapHashCache=true", "-c", "gc.writeCommitGraph=true",
		"-c", "gc.autoDetach=false", "gc", "--quiet", "--cruft", "--prune=2.weeks.ago"); err != nil {
		return nil, err
	}
	if err := gitRun(base, "config", "receive.unpackLimit", "1"); err != nil {
		return nil, err
	}
	work := filepath.Join(tmp, "repack-work")
	if err := gitRun("", "clone", "-q", base, work); err != nil {
		return nil, err
	}
	logf("repack: %d pushes", pushes)
	for i := range pushes {
		for j := 1; j <= 3; j++ {
			f := filepath.Join(work, fmt.Sprintf("pkg%02d/sub%02d/file%d.go", j, j, j))
			b, _ := os.ReadFile(f)
			os.WriteFile(f, append(b, []byte(fmt.Sprintf("// push %d\n", i))...), 0o644)
		}
		if err := gitRun(work, "commit", "-qam", fmt.Sprint("push ", i)); err != nil {
			return nil, err
		}
		if err := gitRun(work, "push", "-q", "origin", "main"); err != nil {
			return nil, err
		}
	}
	var rs []result
	times := map[string]float64{}
	clone := map[string]float64{}
	for _, mode := range []string{"full", "geometric"} {
		dir := filepath.Join(tmp, "repack-"+mode+".git")
		// A copy with the pushes' packs as they are.
		if out, err := exec.Command("cp", "-a", base, dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("cp: %v: %s", err, out)
		}
		t0 := time.Now()
		var err error
		if mode == "full" {
			err = gitRun(dir, "-c", "repack.writeBitmaps=true", "-c", "pack.writeBitmapHashCache=true", "-c", "gc.writeCommitGraph=true",
				"-c", "gc.autoDetach=false", "gc", "--quiet", "--cruft", "--prune=2.weeks.ago")
		} else {
			err = gitRun(dir, "-c", "pack.writeBitmapHashCache=true", "repack", "--geometric=2", "-d", "--write-midx", "--write-bitmap-index", "-q")
			if err == nil {
				err = gitRun(dir, "commit-graph", "write", "--reachable", "--split")
			}
			if err == nil {
				err = gitRun(dir, "pack-refs", "--all")
			}
		}
		if err != nil {
			return nil, err
		}
		times[mode] = time.Since(t0).Seconds()
		clone[mode] = packTime(dir)
		logf("  %s: %.1fs; full-clone pack generation afterwards %.2fs (%s)", mode, times[mode], clone[mode], loadavg())
	}
	rs = append(rs, result{name: fmt.Sprintf("large: maintenance after %d pushes, wall time (full gc in the as-pushed column, geometric in the gitserver column; ratio = geometric / full)", pushes),
		unit: "s", gs: times["geometric"], hb: times["full"], target: "-"})
	rs = append(rs, result{name: "large: full-clone pack generation after that maintenance (full gc in the as-pushed column, geometric in the gitserver column; ratio = geometric / full)",
		unit: "s", gs: clone["geometric"], hb: clone["full"], target: "-"})
	return rs, nil
}
