package main

// What a scenario found, and the table of results.

import (
	"fmt"
	"io"
	"time"
)

// acknowledged by the target, when forwardable).
type result struct {
	Scenario   string        `json:"scenario"`
	Accepted   int           `json:"accepted"`
	Stored     int           `json:"stored"`
	Duplicates int           `json:"duplicates_visible"`
	Lost       int           `json:"lost"`
	Unexpected int           `json:"unexpected"`
	Poison     int           `json:"poison_sent"`
	DeadLetter int           `json:"dead_letters"`
	Recovery   time.Duration `json:"recovery_ns"`
	Forwarding *forwarding   `json:"forwarding,omitempty"` // sink scenarios only
	Err        string        `json:"error,omitempty"`
}

// forwarding is what the target of a sink scenario received.
type forwarding struct {
	// Forwardable counts the accepted events the forwarder must deliver
	// (all of them: no tracking plan or filters are configured, and
	// forward.Process decides it per event).
	Forwardable int `json:"forwardable"`
	// Unique and Deliveries count the events the target acknowledged,
	// once each and in all (a redelivery is at-least-once, not an error).
	Unique     int `json:"forwarded"`
	Deliveries int `json:"deliveries"`
	// Missing counts forwardable events the target never acknowledged;
	// Unexpected, acknowledged ids that were never posted.
	Missing    int `json:"not_forwarded"`
	Unexpected int `json:"unexpected"`
	// DeadLetters counts the forwarder's dead letters (the faults are
	// shorter than its retries, so none are expected).
	DeadLetters int `json:"dead_letters"`
	// Fault says what the target did during the fault.
	Fault string `json:"fault"`
}

func (r result) ok() bool {
	if f := r.Forwarding; f != nil && (f.Missing != 0 || f.Unexpected != 0 || f.DeadLetters != 0 || f.Forwardable == 0) {
		return false
	}
	return r.Err == "" && r.Lost == 0 && r.Duplicates == 0 && r.Unexpected == 0 && r.Poison == r.DeadLetter && r.Accepted > 0
}

func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "| scenario | accepted | stored | duplicates visible | lost | dead letters / poison | forwardable | forwarded | redelivered | not forwarded | recovery time | sink during the fault | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		verdict := "ok"
		if !r.ok() {
			verdict = "FAILED " + r.Err
		}
		fwd, fault := "- | - | - | -", "-"
		if f := r.Forwarding; f != nil {
			fwd = fmt.Sprintf("%d | %d | %d | %d", f.Forwardable, f.Unique, f.Deliveries-f.Unique, f.Missing)
			fault = f.Fault
			if f.DeadLetters > 0 || f.Unexpected > 0 {
				fault += fmt.Sprintf("; forwarder dead letters %d, unexpected ids %d", f.DeadLetters, f.Unexpected)
			}
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d / %d | %s | %s | %s | %s |\n", r.Scenario, r.Accepted, r.Stored, r.Duplicates,
			r.Lost, r.DeadLetter, r.Poison, fwd, r.Recovery.Round(100*time.Millisecond), fault, verdict)
	}
}
