package main

// `yard queues|exchanges|bindings|connections`: the AMQP side of yard over its admin API,
// shown as tables (text/tabwriter) or JSON (-o json).

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// apiQueue is the part of /api/queues the CLI shows.
type apiQueue struct {
	Name                   string         `json:"name"`
	VHost                  string         `json:"vhost"`
	Type                   string         `json:"type"`
	Durable                bool           `json:"durable"`
	AutoDelete             bool           `json:"auto_delete"`
	Exclusive              bool           `json:"exclusive"`
	Arguments              map[string]any `json:"arguments"`
	Messages               int64          `json:"messages"`
	MessagesReady          int64          `json:"messages_ready"`
	MessagesUnacknowledged int64          `json:"messages_unacknowledged"`
	Consumers              int            `json:"consumers"`
}

func newQueuesCmd() *cobra.Command {
	f := &apiFlags{}
	var vhost string
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "List, describe, purge and delete AMQP queues (through the admin API)",
		Example: `  yard queues list
  yard queues describe orders
  yard queues purge orders --vhost /
  yard queues delete orders --if-empty`,
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "virtual host")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List queues with their messages and consumers",
		Example: "  yard queues list\n  yard queues list -o json --http http://broker:8080",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var qs []apiQueue
			if err := f.call("GET", "/api/queues/"+vhostPath(vhost), nil, &qs); err != nil {
				return fmt.Errorf("cannot list queues: %w", err)
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), qs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTYPE\tDURABLE\tMESSAGES\tREADY\tUNACKED\tCONSUMERS")
			for _, q := range qs {
				fmt.Fprintf(tw, "%s\t%s\t%t\t%d\t%d\t%d\t%d\n", q.Name, q.Type, q.Durable, q.Messages, q.MessagesReady, q.MessagesUnacknowledged, q.Consumers)
			}
			return tw.Flush()
		},
	}
	describe := &cobra.Command{
		Use:     "describe QUEUE",
		Short:   "Show one queue: properties, arguments, messages, consumers",
		Example: "  yard queues describe orders\n  yard queues describe orders -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q apiQueue
			if err := f.call("GET", "/api/queues/"+vhostPath(vhost)+"/"+vhostPath(args[0]), nil, &q); err != nil {
				return fmt.Errorf("cannot describe queue %q in vhost %q: %w", args[0], vhost, err)
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), q)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			for _, kv := range [][2]any{
				{"Name", q.Name}, {"VHost", q.VHost}, {"Type", q.Type}, {"Durable", q.Durable},
				{"Auto-delete", q.AutoDelete}, {"Exclusive", q.Exclusive}, {"Arguments", formatArgs(q.Arguments)},
				{"Messages", q.Messages}, {"Ready", q.MessagesReady}, {"Unacked", q.MessagesUnacknowledged}, {"Consumers", q.Consumers},
			} {
				fmt.Fprintf(tw, "%s:\t%v\n", kv[0], kv[1])
			}
			return tw.Flush()
		},
	}
	purge := &cobra.Command{
		Use:     "purge QUEUE",
		Short:   "Remove every ready message of a queue",
		Example: "  yard queues purge orders",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.call("DELETE", "/api/queues/"+vhostPath(vhost)+"/"+vhostPath(args[0])+"/contents", nil, nil); err != nil {
				return fmt.Errorf("cannot purge queue %q in vhost %q: %w", args[0], vhost, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged queue %s\n", args[0])
			return nil
		},
	}
	var ifEmpty, ifUnused bool
	del := &cobra.Command{
		Use:     "delete QUEUE",
		Short:   "Delete a queue and its messages",
		Example: "  yard queues delete orders\n  yard queues delete orders --if-empty --if-unused",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q []string
			if ifEmpty {
				q = append(q, "if-empty=true")
			}
			if ifUnused {
				q = append(q, "if-unused=true")
			}
			path := "/api/queues/" + vhostPath(vhost) + "/" + vhostPath(args[0])
			if len(q) > 0 {
				path += "?" + strings.Join(q, "&")
			}
			if err := f.call("DELETE", path, nil, nil); err != nil {
				return fmt.Errorf("cannot delete queue %q in vhost %q: %w", args[0], vhost, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted queue %s\n", args[0])
			return nil
		},
	}
	del.Flags().BoolVar(&ifEmpty, "if-empty", false, "only if the queue has no messages")
	del.Flags().BoolVar(&ifUnused, "if-unused", false, "only if the queue has no consumers")
	cmd.AddCommand(list, describe, purge, del)
	return cmd
}

func formatArgs(args map[string]any) string {
	if len(args) == 0 {
		return "-"
	}
	var parts []string
	for k, v := range args {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

type apiExchange struct {
	Name       string `json:"name"`
	VHost      string `json:"vhost"`
	Type       string `json:"type"`
	Durable    bool   `json:"durable"`
	AutoDelete bool   `json:"auto_delete"`
	Internal   bool   `json:"internal"`
}

func newExchangesCmd() *cobra.Command {
	f := &apiFlags{}
	var vhost string
	cmd := &cobra.Command{
		Use:     "exchanges",
		Short:   "List AMQP exchanges (through the admin API)",
		Example: "  yard exchanges list",
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "virtual host")
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List exchanges",
		Example: "  yard exchanges list\n  yard exchanges list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var exs []apiExchange
			if err := f.call("GET", "/api/exchanges/"+vhostPath(vhost), nil, &exs); err != nil {
				return fmt.Errorf("cannot list exchanges: %w", err)
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), exs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTYPE\tDURABLE\tAUTO-DELETE\tINTERNAL")
			for _, e := range exs {
				name := e.Name
				if name == "" {
					name = "(AMQP default)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%t\t%t\t%t\n", name, e.Type, e.Durable, e.AutoDelete, e.Internal)
			}
			return tw.Flush()
		},
	})
	return cmd
}

type apiBinding struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

func newBindingsCmd() *cobra.Command {
	f := &apiFlags{}
	var vhost string
	cmd := &cobra.Command{
		Use:     "bindings",
		Short:   "List AMQP bindings (through the admin API)",
		Example: "  yard bindings list",
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "virtual host")
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List bindings, the default exchange's implicit ones included",
		Example: "  yard bindings list\n  yard bindings list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var bs []apiBinding
			if err := f.call("GET", "/api/bindings/"+vhostPath(vhost), nil, &bs); err != nil {
				return fmt.Errorf("cannot list bindings: %w", err)
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), bs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tDESTINATION\tTYPE\tROUTING KEY\tARGUMENTS")
			for _, b := range bs {
				src := b.Source
				if src == "" {
					src = "(AMQP default)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", src, b.Destination, b.DestinationType, b.RoutingKey, formatArgs(b.Arguments))
			}
			return tw.Flush()
		},
	})
	return cmd
}

type apiConnection struct {
	Name        string `json:"name"`
	ID          uint64 `json:"id"`
	Protocol    string `json:"protocol"`
	Listener    string `json:"listener"`
	PeerHost    string `json:"peer_host"`
	User        string `json:"user"`
	VHost       string `json:"vhost"`
	ConnectedAt int64  `json:"connected_at"`
}

func newConnectionsCmd() *cobra.Command {
	f := &apiFlags{}
	cmd := &cobra.Command{
		Use:     "connections",
		Short:   "List and close client connections of every protocol (through the admin API)",
		Example: "  yard connections list\n  yard connections close 7 --reason maintenance",
	}
	f.register(cmd)
	list := &cobra.Command{
		Use:     "list",
		Short:   "List live connections, Kafka and AMQP",
		Example: "  yard connections list\n  yard connections list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cs []apiConnection
			if err := f.call("GET", "/api/connections", nil, &cs); err != nil {
				return fmt.Errorf("cannot list connections: %w", err)
			}
			if f.output == "json" {
				return printJSON(cmd.OutOrStdout(), cs)
			}
			return printConnections(cmd.OutOrStdout(), cs)
		},
	}
	var reason string
	closeCmd := &cobra.Command{
		Use:     "close ID|NAME",
		Short:   "Close a connection (an AMQP client is told --reason)",
		Example: "  yard connections close 7\n  yard connections close '127.0.0.1:50012 -> 127.0.0.1:5672' --reason maintenance",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.callWithHeader("DELETE", "/api/connections/"+vhostPath(args[0]), "X-Reason", reason); err != nil {
				return fmt.Errorf("cannot close connection %s: %w (see `yard connections list`)", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "closed connection %s\n", args[0])
			return nil
		},
	}
	closeCmd.Flags().StringVar(&reason, "reason", "Closed via yard connections close", "reason told to the client")
	cmd.AddCommand(list, closeCmd)
	return cmd
}

func printConnections(w io.Writer, cs []apiConnection) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROTOCOL\tPEER\tUSER\tVHOST\tLISTENER")
	for _, c := range cs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Protocol, c.PeerHost, dash(c.User), dash(c.VHost), dash(c.Listener))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// callWithHeader is call for a request without body or answer but with one header.
func (f *apiFlags) callWithHeader(method, path, key, value string) error {
	req, err := http.NewRequest(method, strings.TrimRight(f.base, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("cannot reach yard at %s: %w (use --http http://HOST:PORT)", f.base, err)
	}
	req.Header.Set(key, value)
	return f.do(req, nil)
}
