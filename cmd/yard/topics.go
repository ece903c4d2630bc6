package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// newTopicsCmd is `yard topics create|list|describe|alter|delete`, a Kafka client (kadm).
func newTopicsCmd() *cobra.Command {
	return newAdminGroupCmd("topics", "Create, list, describe, alter and delete Kafka topics",
		topicsCreateCmd, topicsListCmd, topicsDescribeCmd, topicsAlterCmd, topicsDeleteCmd)
}

func topicsCreateCmd(bootstrap *string) *cobra.Command {
	var topic string
	var partitions int32
	var rf int16
	var configs []string
	cmd := &cobra.Command{
		Use:   "create --topic T [--partitions N] [--config NAME=VALUE]...",
		Short: "Create a topic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgs, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			adm, done, err := newAdmin(*bootstrap)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := interruptible(cmd)
			defer cancel()
			res, err := adm.CreateTopic(ctx, partitions, rf, cfgs, topic)
			if err == nil {
				err = res.Err
			}
			if err != nil {
				return fmt.Errorf("cannot create topic %q: %w%s", topic, err, detail(res.ErrMessage))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created topic %s (id %s, %d partitions).\n", res.Topic, res.ID, res.NumPartitions)
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic name (required)")
	cmd.Flags().Int32Var(&partitions, "partitions", -1, "number of partitions (-1: the broker default)")
	cmd.Flags().Int16Var(&rf, "replication-factor", -1, "replication factor (-1: the broker default)")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "topic config NAME=VALUE (repeatable), e.g. retention.ms=86400000")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

func topicsListCmd(bootstrap *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List topic names",
		Args:  cobra.NoArgs,
		RunE: withAdmin(bootstrap, func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			td, err := adm.ListTopics(ctx)
			if err != nil {
				return fmt.Errorf("cannot list topics: %w", err)
			}
			for _, name := range td.Names() {
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			return nil
		}),
	}
}

func topicsDescribeCmd(bootstrap *string) *cobra.Command {
	var topic string
	cmd := &cobra.Command{
		Use:   "describe --topic T",
		Short: "Show a topic's ID, partitions with their offsets, and its configs",
		Args:  cobra.NoArgs,
		RunE: withAdmin(bootstrap, func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			td, err := adm.ListTopics(ctx, topic)
			if err != nil {
				return fmt.Errorf("cannot describe topic %q: %w", topic, err)
			}
			d, ok := td[topic]
			if !ok || d.Err != nil {
				return fmt.Errorf("cannot describe topic %q: %w", topic, errOr(d.Err, errors.New("not found")))
			}
			starts, err := adm.ListStartOffsets(ctx, topic)
			if err != nil {
				return fmt.Errorf("cannot list start offsets: %w", err)
			}
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return fmt.Errorf("cannot list end offsets: %w", err)
			}
			rcs, err := adm.DescribeTopicConfigs(ctx, topic)
			if err != nil {
				return fmt.Errorf("cannot describe configs: %w", err)
			}
			return printTopic(cmd.OutOrStdout(), d, starts, ends, rcs)
		}),
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic name (required)")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func errOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

func printTopic(out io.Writer, d kadm.TopicDetail, starts, ends kadm.ListedOffsets, rcs kadm.ResourceConfigs) error {
	// Kafka prints topic IDs as unpadded base64url (its Uuid.toString), so ours match its tools'.
	fmt.Fprintf(out, "Topic: %s\tTopicId: %s\tPartitionCount: %d\n", d.Topic, base64.RawURLEncoding.EncodeToString(d.ID[:]), len(d.Partitions))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tSTART-OFFSET\tEND-OFFSET")
	for _, p := range d.Partitions.Sorted() {
		s, _ := starts.Lookup(d.Topic, p.Partition)
		e, _ := ends.Lookup(d.Topic, p.Partition)
		fmt.Fprintf(tw, "%d\t%d\t%v\t%v\t%d\t%d\n", p.Partition, p.Leader, p.Replicas, p.ISR, s.Offset, e.Offset)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return fmt.Errorf("cannot describe configs: %w", rc.Err)
		}
		sort.Slice(rc.Configs, func(i, j int) bool { return rc.Configs[i].Key < rc.Configs[j].Key })
		fmt.Fprintln(out, "Configs:")
		for _, c := range rc.Configs {
			fmt.Fprintf(out, "  %s=%s (%s)\n", c.Key, c.MaybeValue(), c.Source)
		}
	}
	return nil
}

func topicsAlterCmd(bootstrap *string) *cobra.Command {
	var topic string
	var partitions int32
	var set, del []string
	cmd := &cobra.Command{
		Use:   "alter --topic T [--partitions N] [--config NAME=VALUE]... [--delete-config NAME]...",
		Short: "Add partitions to a topic or change its configs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgs, err := parseConfigs(set)
			if err != nil {
				return err
			}
			if partitions <= 0 && len(cfgs) == 0 && len(del) == 0 {
				return errors.New("nothing to alter: give --partitions, --config or --delete-config")
			}
			adm, done, err := newAdmin(*bootstrap)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := interruptible(cmd)
			defer cancel()
			if partitions > 0 {
				res, err := adm.UpdatePartitions(ctx, int(partitions), topic)
				if err == nil {
					err = res[topic].Err
				}
				if err != nil {
					return fmt.Errorf("cannot change partitions of %q: %w%s", topic, err, detail(res[topic].ErrMessage))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Topic %s now has %d partitions.\n", topic, partitions)
			}
			var alters []kadm.AlterConfig
			for k, v := range cfgs {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: v})
			}
			for _, k := range del {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			if len(alters) == 0 {
				return nil
			}
			res, err := adm.AlterTopicConfigs(ctx, alters, topic)
			if err == nil && len(res) > 0 {
				if err = res[0].Err; err != nil {
					err = fmt.Errorf("%w%s", err, detail(res[0].ErrMessage))
				}
			}
			if err != nil {
				return fmt.Errorf("cannot alter configs of %q: %w", topic, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Altered configs of topic %s.\n", topic)
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic name (required)")
	cmd.Flags().Int32Var(&partitions, "partitions", 0, "new (larger) partition count")
	cmd.Flags().StringArrayVar(&set, "config", nil, "set topic config NAME=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&del, "delete-config", nil, "revert topic config NAME to its default (repeatable)")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func topicsDeleteCmd(bootstrap *string) *cobra.Command {
	var topic string
	cmd := &cobra.Command{
		Use:   "delete --topic T",
		Short: "Delete a topic and its data",
		Args:  cobra.NoArgs,
		RunE: withAdmin(bootstrap, func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			res, err := adm.DeleteTopic(ctx, topic)
			if err == nil {
				err = res.Err
			}
			if err != nil {
				return fmt.Errorf("cannot delete topic %q: %w%s", topic, err, detail(res.ErrMessage))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted topic %s.\n", topic)
			return nil
		}),
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic name (required)")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}
