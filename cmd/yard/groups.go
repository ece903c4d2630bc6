package main

// `yard groups list|describe|reset-offsets|delete`: a Kafka client (kadm) that prints what
// Kafka's own kafka-consumer-groups tool prints, columns and messages alike.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// newGroupsCmd is `yard groups ...`.
func newGroupsCmd() *cobra.Command {
	return newAdminGroupCmd("groups", "List, describe, reset the offsets of and delete Kafka consumer groups",
		groupsListCmd, groupsDescribeCmd, groupsResetCmd, groupsDeleteCmd)
}

// errSilent is returned after the command printed Kafka's own message for the failure; main
// still exits 1 with its one-line summary.
type errSilent struct{ error }

func groupsListCmd(bootstrap *string) *cobra.Command {
	var showState bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Args:  cobra.NoArgs,
		RunE: withAdmin(bootstrap, func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			listed, err := adm.ListGroups(ctx)
			if err != nil {
				return fmt.Errorf("cannot list groups: %w", err)
			}
			out := cmd.OutOrStdout()
			if !showState {
				for _, g := range listed.Groups() {
					fmt.Fprintln(out, g)
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tSTATE")
			for _, g := range listed.Sorted() {
				fmt.Fprintf(tw, "%s\t%s\n", g.Group, g.State)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&showState, "state", false, "also print each group's state")
	return cmd
}

// describeRow is one line of `describe`.
type describeRow struct {
	topic                string
	partition            int32
	current, end, lag    string
	consumer, host, clid string
}

func groupsDescribeCmd(bootstrap *string) *cobra.Command {
	var groupID string
	cmd := &cobra.Command{
		Use:   "describe --group G",
		Short: "Show a group's partitions: committed offset, log-end offset, lag and owner",
		Args:  cobra.NoArgs,
		RunE: withAdmin(bootstrap, func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			return describeGroup(ctx, adm, groupID, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	cmd.Flags().StringVar(&groupID, "group", "", "consumer group id (required)")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

// describeGroupState returns the group's description, or an errSilent after printing Kafka's
// message for a missing group.
func describeGroupState(ctx context.Context, adm *kadm.Client, groupID string, stderr io.Writer) (kadm.DescribedGroup, error) {
	described, err := adm.DescribeGroups(ctx, groupID)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		var ke *kerr.Error
		if !errors.As(err, &ke) || ke.Code != kerr.GroupIDNotFound.Code {
			return kadm.DescribedGroup{}, fmt.Errorf("cannot describe group %q: %w", groupID, err)
		}
	}
	d, ok := described[groupID]
	var ke *kerr.Error
	if !ok || d.State == "Dead" || errors.As(d.Err, &ke) && ke.Code == kerr.GroupIDNotFound.Code {
		fmt.Fprintf(stderr, "\nError: Consumer group '%s' does not exist.\n", groupID)
		return d, errSilent{fmt.Errorf("consumer group %q does not exist", groupID)}
	}
	if d.Err != nil {
		return d, fmt.Errorf("cannot describe group %q: %w", groupID, d.Err)
	}
	return d, nil
}

func describeGroup(ctx context.Context, adm *kadm.Client, groupID string, out, stderr io.Writer) error {
	d, err := describeGroupState(ctx, adm, groupID, stderr)
	if err != nil {
		return err
	}
	committed, err := adm.FetchOffsets(ctx, groupID)
	if err != nil {
		return fmt.Errorf("cannot fetch offsets of group %q: %w", groupID, err)
	}
	type owner struct{ id, host, client string }
	owners := map[string]map[int32]owner{}
	topics := map[string]bool{}
	for _, m := range d.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range a.Topics {
			topics[t.Topic] = true
			if owners[t.Topic] == nil {
				owners[t.Topic] = map[int32]owner{}
			}
			for _, p := range t.Partitions {
				owners[t.Topic][p] = owner{m.MemberID, m.ClientHost, m.ClientID}
			}
		}
	}
	committed.Each(func(o kadm.OffsetResponse) { topics[o.Topic] = true })
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil && len(names) > 0 {
		return fmt.Errorf("cannot list end offsets: %w", err)
	}
	var rows []describeRow
	seen := map[string]map[int32]bool{}
	add := func(topic string, p int32) {
		if seen[topic] == nil {
			seen[topic] = map[int32]bool{}
		}
		if seen[topic][p] {
			return
		}
		seen[topic][p] = true
		r := describeRow{topic: topic, partition: p, current: "-", end: "-", lag: "-", consumer: "-", host: "-", clid: "-"}
		c, hasC := committed.Lookup(topic, p)
		if hasC && c.Err == nil && c.At >= 0 {
			r.current = strconv.FormatInt(c.At, 10)
		} else {
			hasC = false
		}
		if e, ok := ends.Lookup(topic, p); ok && e.Err == nil {
			r.end = strconv.FormatInt(e.Offset, 10)
			if hasC {
				r.lag = strconv.FormatInt(max(e.Offset-c.At, 0), 10)
			}
		}
		if o, ok := owners[topic][p]; ok {
			r.consumer, r.host, r.clid = o.id, o.host, o.client
		}
		rows = append(rows, r)
	}
	for t, ps := range owners {
		for p := range ps {
			add(t, p)
		}
	}
	committed.Each(func(o kadm.OffsetResponse) { add(o.Topic, o.Partition) })
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].topic != rows[j].topic {
			return rows[i].topic < rows[j].topic
		}
		return rows[i].partition < rows[j].partition
	})
	switch d.State {
	case "Empty":
		fmt.Fprintf(out, "\nConsumer group '%s' has no active members.\n", groupID)
	case "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling":
		fmt.Fprintf(out, "\nWarning: Consumer group '%s' is rebalancing.\n", groupID)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", groupID, r.topic, r.partition, r.current, r.end, r.lag, r.consumer, r.host, r.clid)
	}
	return tw.Flush()
}

// resetSpec is the one chosen --to-* / --shift-by option.
type resetSpec struct {
	earliest, latest bool
	toOffset         int64
	toDatetime       string
	shiftBy          int64
	set              map[string]bool
}

func groupsResetCmd(bootstrap *string) *cobra.Command {
	var groupID, topic string
	var execute bool
	spec := resetSpec{}
	cmd := &cobra.Command{
		Use:   "reset-offsets --group G --topic T (--to-earliest|--to-latest|--to-offset N|--to-datetime ISO8601|--shift-by N) [--execute]",
		Short: "Move an inactive group's committed offsets (a dry run unless --execute)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.set = map[string]bool{}
			n := 0
			for _, f := range []string{"to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"} {
				if cmd.Flags().Changed(f) {
					spec.set[f] = true
					n++
				}
			}
			if n != 1 {
				return errors.New("exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by is required")
			}
			adm, done, err := newAdmin(*bootstrap)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := interruptible(cmd)
			defer cancel()
			return resetOffsets(ctx, adm, groupID, topic, spec, execute, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&groupID, "group", "", "consumer group id (required)")
	cmd.Flags().StringVar(&topic, "topic", "", "topic whose partitions are reset (required)")
	cmd.Flags().BoolVar(&spec.earliest, "to-earliest", false, "reset to the earliest offset")
	cmd.Flags().BoolVar(&spec.latest, "to-latest", false, "reset to the log-end offset")
	cmd.Flags().Int64Var(&spec.toOffset, "to-offset", 0, "reset to this offset (clamped to the partition's range)")
	cmd.Flags().StringVar(&spec.toDatetime, "to-datetime", "", "reset to the first offset at or after this time, e.g. 2026-01-02T15:04:05.000 (local time) or with a zone")
	cmd.Flags().Int64Var(&spec.shiftBy, "shift-by", 0, "move the committed offsets by N (may be negative)")
	cmd.Flags().BoolVar(&execute, "execute", false, "apply the new offsets (without it, only print them)")
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// parseISODatetime accepts Kafka's formats: yyyy-MM-ddTHH:mm:ss[.SSS] with an optional zone
// (Z or +hh:mm); without a zone, local time.
func parseISODatetime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse --to-datetime %q: want yyyy-MM-ddTHH:mm:ss.SSS[zone]", s)
}

// newOffsets computes the target offset of every partition of topic.
func newOffsets(ctx context.Context, adm *kadm.Client, groupID, topic string, spec resetSpec) (kadm.Offsets, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list start offsets of %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list end offsets of %q: %w", topic, err)
	}
	var byTime kadm.ListedOffsets
	if spec.set["to-datetime"] {
		t, err := parseISODatetime(spec.toDatetime)
		if err != nil {
			return nil, err
		}
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic); err != nil {
			return nil, fmt.Errorf("cannot list offsets by time: %w", err)
		}
	}
	var committed kadm.OffsetResponses
	if spec.set["shift-by"] {
		if committed, err = adm.FetchOffsets(ctx, groupID); err != nil {
			return nil, fmt.Errorf("cannot fetch offsets of group %q: %w", groupID, err)
		}
	}
	out := kadm.Offsets{}
	var ferr error
	starts.Each(func(s kadm.ListedOffset) {
		e, _ := ends.Lookup(topic, s.Partition)
		var at int64
		switch {
		case spec.earliest:
			at = s.Offset
		case spec.latest:
			at = e.Offset
		case spec.set["to-offset"]:
			at = spec.toOffset
		case spec.set["to-datetime"]:
			at = e.Offset
			if o, ok := byTime.Lookup(topic, s.Partition); ok && o.Err == nil && o.Offset >= 0 {
				at = o.Offset
			}
		case spec.set["shift-by"]:
			c, ok := committed.Lookup(topic, s.Partition)
			if !ok || c.Err != nil || c.At < 0 {
				ferr = fmt.Errorf("partition %s-%d has no committed offset to shift", topic, s.Partition)
				return
			}
			at = c.At + spec.shiftBy
		}
		at = min(max(at, s.Offset), e.Offset) // Kafka clamps to the partition's range
		out.Add(kadm.Offset{Topic: topic, Partition: s.Partition, At: at, LeaderEpoch: -1})
	})
	return out, ferr
}

func resetOffsets(ctx context.Context, adm *kadm.Client, groupID, topic string, spec resetSpec, execute bool, out, stderr io.Writer) error {
	described, err := adm.DescribeGroups(ctx, groupID)
	state := "Dead"
	if d, ok := described[groupID]; ok && err == nil && d.Err == nil {
		state = d.State
	}
	if state != "Empty" && state != "Dead" {
		fmt.Fprintf(stderr, "\nError: Assignments can only be reset if the group '%s' is inactive, but the current state is %s.\n", groupID, state)
		return errSilent{fmt.Errorf("group %q is %s", groupID, state)}
	}
	offs, err := newOffsets(ctx, adm, groupID, topic, spec)
	if err != nil {
		return err
	}
	if execute {
		resp, err := adm.CommitOffsets(ctx, groupID, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("cannot commit offsets of group %q: %w", groupID, err)
		}
	} else {
		fmt.Fprintln(out, "\nWARN: No action will be performed as the --execute option is missing. In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting.")
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET")
	for _, o := range offs.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", groupID, o.Topic, o.Partition, o.At)
	}
	return tw.Flush()
}

func groupsDeleteCmd(bootstrap *string) *cobra.Command {
	var groupID string
	cmd := &cobra.Command{
		Use:   "delete --group G",
		Short: "Delete an empty group and its committed offsets",
		Args:  cobra.NoArgs,
		RunE: withAdmin(bootstrap, func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			resp, err := adm.DeleteGroup(ctx, groupID)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				var ke *kerr.Error
				why := err.Error()
				if errors.As(err, &ke) {
					why = ke.Message + ": " + strings.TrimPrefix(ke.Description, ke.Message+": ")
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Deletion of some consumer groups failed:\n* Group '%s' could not be deleted due to: %s\n", groupID, why)
				return errSilent{err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deletion of requested consumer groups ('%s') was successful.\n", groupID)
			return nil
		}),
	}
	cmd.Flags().StringVar(&groupID, "group", "", "consumer group id (required)")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}
