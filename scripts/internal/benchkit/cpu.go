package benchkit

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

// CPU is the CPU time spent so far by the processes a measurement
// involves: this one (the writer runs in it), its finished children
// (clickhouse-client), the ClickHouse server and the Kafka broker; and the
// minor page faults of this process and its children.
type CPU struct {
	Self, Children, ClickHouse, Kafka time.Duration
	SelfSys                           time.Duration // the system part of Self
	Faults                            int64
}

// CPUNow reads the CPU time of this process, its children and the servers
// (found by name in /proc; a server not found counts zero).
func CPUNow() CPU {
	var u CPU
	var self, kids syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) == nil {
		u.Self = time.Duration(self.Utime.Nano() + self.Stime.Nano())
		u.SelfSys = time.Duration(self.Stime.Nano())
		u.Faults += self.Minflt
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids) == nil {
		u.Children = time.Duration(kids.Utime.Nano() + kids.Stime.Nano())
		u.Faults += kids.Minflt
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		switch c := string(cmd); {
		case strings.Contains(c, "clickhouse-server") || strings.HasPrefix(c, "/usr/bin/clickhouse\x00server"):
			u.ClickHouse += procCPU(d)
		case strings.Contains(c, "kafka.Kafka"):
			u.Kafka += procCPU(d)
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

// Since is the CPU time spent from u0 to u.
func (u CPU) Since(u0 CPU) CPU {
	return CPU{Self: u.Self - u0.Self, Children: u.Children - u0.Children, ClickHouse: u.ClickHouse - u0.ClickHouse,
		Kafka: u.Kafka - u0.Kafka, SelfSys: u.SelfSys - u0.SelfSys, Faults: u.Faults - u0.Faults}
}

// PerMillion is the CPU seconds of all the processes per million of n rows.
func (u CPU) PerMillion(n int) float64 {
	return (u.Self + u.Children + u.ClickHouse + u.Kafka).Seconds() * 1e6 / float64(n)
}

// ProcPerMillion is the CPU seconds of this process and its children (the
// writer runs in it; clickhouse-client is a child) per million of n rows.
func (u CPU) ProcPerMillion(n int) float64 {
	return (u.Self + u.Children).Seconds() * 1e6 / float64(n)
}

// ServerPerMillion is the ClickHouse server's CPU seconds per million of n
// rows.
func (u CPU) ServerPerMillion(n int) float64 { return u.ClickHouse.Seconds() * 1e6 / float64(n) }

// String describes the CPU time spent on n rows.
func (u CPU) String(n int) string {
	per := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(n) }
	return fmt.Sprintf("CPU s per million rows: %.2f in total (bench process and clickhouse-client %.2f, of which the bench process's system time %.2f; ClickHouse server %.2f, Kafka broker %.2f); %d minor page faults",
		u.PerMillion(n), per(u.Self+u.Children), per(u.SelfSys), per(u.ClickHouse), per(u.Kafka), u.Faults)
}

// SelfCPU is the user and system time of this process so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
