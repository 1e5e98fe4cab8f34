package main

// The CPU a measurement costs: this process, its children, the ClickHouse
// server and the Kafka broker.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuUse is the CPU time spent so far by the processes a measurement
// involves: this one (the writer runs in it), its finished children
// (clickhouse-client), the ClickHouse server and the Kafka broker; and the
// minor page faults of this process and its children.
type cpuUse struct {
	self, children, clickhouse, kafka time.Duration
	selfSys                           time.Duration // the system part of self
	faults                            int64
}

// cpuNow reads the CPU time of this process, its children and the servers
// (found by name in /proc; a server not found counts zero).
func cpuNow() cpuUse {
	var u cpuUse
	var self, kids syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) == nil {
		u.self = time.Duration(self.Utime.Nano() + self.Stime.Nano())
		u.selfSys = time.Duration(self.Stime.Nano())
		u.faults += self.Minflt
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids) == nil {
		u.children = time.Duration(kids.Utime.Nano() + kids.Stime.Nano())
		u.faults += kids.Minflt
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		switch c := string(cmd); {
		case strings.Contains(c, "clickhouse-server") || strings.HasPrefix(c, "/usr/bin/clickhouse\x00server"):
			u.clickhouse += procCPU(d)
		case strings.Contains(c, "kafka.Kafka"):
			u.kafka += procCPU(d)
		}
	}
	return u
}

// procCPU is the user and system time of the process in /proc dir d.
func procCPU(d string) time.Duration {
	b, err := os.ReadFile(filepath.Join(d, "stat"))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: state is field 3, utime
	// and stime are fields 14 and 15, in clock ticks (100 per second).
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// since is the CPU time spent from u0 to u.
func (u cpuUse) since(u0 cpuUse) cpuUse {
	return cpuUse{self: u.self - u0.self, children: u.children - u0.children, clickhouse: u.clickhouse - u0.clickhouse,
		kafka: u.kafka - u0.kafka, selfSys: u.selfSys - u0.selfSys, faults: u.faults - u0.faults}
}

// perMillion is the CPU seconds of all the processes per million of n rows.
func (u cpuUse) perMillion(n int) float64 {
	return (u.self + u.children + u.clickhouse + u.kafka).Seconds() * 1e6 / float64(n)
}

// procPerMillion is the CPU seconds of this process and its children (the
// writer runs in it; clickhouse-client is a child) per million of n rows.
func (u cpuUse) procPerMillion(n int) float64 {
	return (u.self + u.children).Seconds() * 1e6 / float64(n)
}

// serverPerMillion is the ClickHouse server's CPU seconds per million of n
// rows.
func (u cpuUse) serverPerMillion(n int) float64 { return u.clickhouse.Seconds() * 1e6 / float64(n) }

// String describes the CPU time spent on n rows.
func (u cpuUse) String(n int) string {
	per := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(n) }
	return fmt.Sprintf("CPU s per million rows: %.2f in total (bench process and clickhouse-client %.2f, of which the bench process's system time %.2f; ClickHouse server %.2f, Kafka broker %.2f); %d minor page faults",
		u.perMillion(n), per(u.self+u.children), per(u.selfSys), per(u.clickhouse), per(u.kafka), u.faults)
}
