package main

import "github.com/spf13/cobra"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "yard",
		Short: "yard: an event-streaming broker (Kafka protocol) and a message queue (AMQP 0-9-1) in one",
		// Errors are printed once by main, with the usage only for flag mistakes.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newVersionCmd(),
		newTopicsCmd(),
		newProduceCmd(),
		newConsumeCmd(),
		newGroupsCmd(),
		newUsersCmd(),
		newPermissionsCmd(),
		newVhostsCmd(),
		newQueuesCmd(),
		newExchangesCmd(),
		newBindingsCmd(),
		newConnectionsCmd(),
	)
	return root
}
