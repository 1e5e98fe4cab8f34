package main

// The CSV export's rate and the API's resident memory while it runs.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// export streams ws's CSV export and returns its data rows, the seconds it
// took and the API's highest resident memory (MB) seen while it ran.
func export(base, tok, ws string, pid int) (int, float64, float64, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/workspaces/"+ws+"/audit-events.csv", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	stop := make(chan struct{})
	peak := make(chan float64)
	go func() {
		hi := 0.0
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				hi = max(hi, procStatus(pid, "VmRSS"))
			case <-stop:
				peak <- hi
				return
			}
		}
	}()
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		close(stop)
		<-peak
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	lines := 0
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	buf := make([]byte, 1<<20)
	for {
		n, err := br.Read(buf)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		if err == io.EOF {
			break
		}
		if err != nil {
			close(stop)
			<-peak
			return 0, 0, 0, err
		}
	}
	secs := time.Since(t0).Seconds()
	close(stop)
	p := <-peak
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("export: status %d", resp.StatusCode)
	}
	return lines - 1, secs, p, nil
}

// procStatus returns a memory field of /proc/pid/status in MB.
func procStatus(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
