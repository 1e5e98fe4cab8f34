package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/query-api/verify"
)

func monitor(ctx context.Context, args []string) (result, error) {
	fs, c := newFlags("monitor")
	statePath := fs.String("state", "", "the state file: the last checkpoint seen per workspace (created when missing)")
	fromTopic := fs.Bool("topic", false, "read the checkpoints from the checkpoints topic ("+config.CheckpointsTopic.Name+")")
	apiURL := fs.String("api", "", "read checkpoints (with -workspace) and consistency proofs from this read API, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "the read API's bearer token (an owner of each workspace)")
	workspaces := fs.String("workspace", "", "workspaces to read from the API, comma-separated")
	if err := fs.Parse(args); err != nil {
		return result{}, err
	}
	switch {
	case *statePath == "":
		return result{}, errors.New("flag -state: name the state file")
	case !*fromTopic && (*apiURL == "" || *workspaces == ""):
		return result{}, errors.New("flag -topic, or -api with -workspace: say where checkpoints come from")
	}
	vs, err := c.verifiers()
	if err != nil {
		return result{}, err
	}
	state, err := verify.LoadState(*statePath)
	if err != nil {
		return result{}, fmt.Errorf("flag -state: %w", err)
	}
	var prover verify.Prover
	api := verify.API{BaseURL: strings.TrimSuffix(*apiURL, "/"), Token: *token}
	if *apiURL != "" {
		prover = api
	} else {
		src, _, closeConn, err := storeSource(ctx, c.env)
		if err != nil {
			return result{}, err
		}
		defer closeConn()
		prover = src
	}
	notes, err := monitorNotes(ctx, c, *fromTopic, api, *workspaces)
	if err != nil {
		return result{}, err
	}
	var rep verify.Report
	for _, n := range notes {
		rep.Checked++
		rep.Problems = append(rep.Problems, state.ObservePublished(ctx, n, vs, c.origin, prover)...)
	}
	if err := state.Save(*statePath); err != nil {
		return result{}, err
	}
	return result{Report: rep, summary: fmt.Sprintf("%d checkpoints checked, state in %s", rep.Checked, *statePath)}, nil
}

// monitorNotes returns the checkpoints to check, in order.
func monitorNotes(ctx context.Context, c *common, fromTopic bool, api verify.API, workspaces string) ([]verify.Published, error) {
	if fromTopic {
		recs, err := topicRecords(ctx, c.env)
		return verify.LatestPerWorkspace(recs), err
	}
	var out []verify.Published
	for _, ws := range strings.Split(workspaces, ",") {
		n, err := api.Checkpoint(ctx, strings.TrimSpace(ws))
		if err != nil {
			return nil, fmt.Errorf("flag -api: %w", err)
		}
		out = append(out, verify.Published{WorkspaceID: strings.TrimSpace(ws), Note: n})
	}
	return out, nil
}
