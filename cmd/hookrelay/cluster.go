package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/hookrelay/hookrelay/relay/admin"
	"github.com/urfave/cli/v2"
)

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:   "cluster",
		Usage:  "cluster mode: inspect the NATS JetStream cluster",
		Action: subcommandsOnly("cluster"),
		Subcommands: []*cli.Command{{
			Name:  "status",
			Usage: "nodes, meta leader, streams and consumers, pending deliveries per target",
			Description: "Asks a running node (admin.listen); with cluster.nats.urls and no node running it\n" +
				"asks NATS itself.\n" +
				exitCodes("shown", "not in cluster mode, no node or NATS answering, or bad flags or config"),
			Flags:  []cli.Flag{configFlag(), &cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
			Action: clusterStatus,
		}},
	}
}

func clusterStatus(c *cli.Context) error {
	cfg, err := loadConfigForReading(c)
	if err != nil {
		return err
	}
	if cfg.Cluster == nil {
		return admin.ErrNotClustered
	}
	b, err := openEvents(c, cfg, cliLogger(c))
	if err != nil {
		return err
	}
	defer b.Close(c.Context)
	st, err := b.ClusterStatus(c.Context)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(out, "cluster %s, seen from node %s; meta leader: %s\n\n", st.Cluster, st.Node, dash(st.MetaLeader))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "NODE\tCURRENT\tOFFLINE\tLAG\n")
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "%s\t%v\t%v\t%d\n", n.Name, n.Current, n.Offline, n.Lag)
	}
	w.Flush()
	fmt.Fprintln(out)
	fmt.Fprintf(w, "HOOKRELAY NODE\tHOST\tPID\tSINCE\tDISK\n")
	for _, h := range st.Holders {
		disk := "ok"
		if h.LowSpace != "" {
			disk = h.LowSpace
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", h.Node, h.Host, h.PID, h.Since.UTC().Format(cliTimeFormat), disk)
	}
	w.Flush()
	fmt.Fprintln(out)
	fmt.Fprintf(w, "STREAM\tREPLICAS\tLEADER\tMESSAGES\tBYTES\tCONSUMERS\n")
	for _, s := range st.Streams {
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%d\n", s.Name, s.Replicas, dash(s.Leader), s.Messages, s.Bytes, s.Consumers)
	}
	w.Flush()
	fmt.Fprintln(out)
	fmt.Fprintf(w, "TARGET\tPENDING\n")
	for _, t := range st.Targets {
		fmt.Fprintf(w, "%s\t%d\n", t.Target, t.Pending)
	}
	return w.Flush()
}
