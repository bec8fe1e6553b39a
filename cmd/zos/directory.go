package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
)

func identityCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "identity", Short: "create or show your identity"}
	var name, email, mnemonic string
	var force bool
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "create a key (or restore one from its mnemonic) and register it on the explorer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return fmt.Errorf("--name is required: %w", errUsage)
			}
			f, err := identity.Generate()
			if err != nil {
				return err
			}
			if mnemonic != "" {
				if f.Seed, err = identity.SeedFromMnemonic(mnemonic); err != nil {
					return fmt.Errorf("mnemonic: %w: %w", gridtypes.ErrInvalid, err)
				}
			}
			if _, err := identity.ReadSeedFile(a.identityPath); err == nil && !force {
				return fmt.Errorf("%s exists (use --force to replace it): %w", a.identityPath, explorer.ErrConflict)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) && !force {
				return fmt.Errorf("%s: %w", a.identityPath, err)
			}
			kp := f.KeyPair()
			u := gridtypes.User{Name: name, Email: email, PublicKey: hex.EncodeToString(kp.PublicKey()), Created: time.Now().Unix()}
			u.Sign(kp.PrivateKey())
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			id, err := a.client().CreateUser(ctx, u)
			if err != nil {
				return err
			}
			u.ID = id
			f.ThreebotID = int64(id)
			if err := identity.WriteSeedFile(a.identityPath, f); err != nil {
				return err
			}
			fmt.Fprintf(a.errOut, "identity written to %s; keep these words to restore it:\n  %s\n", a.identityPath, f.Seed.Mnemonic())
			return a.printUser(u)
		},
	}
	newCmd.Flags().StringVar(&name, "name", "", "your user name (3-64 lower-case letters and digits)")
	newCmd.Flags().StringVar(&email, "email", "", "your email")
	newCmd.Flags().StringVar(&mnemonic, "mnemonic", "", "restore the key from these 24 words")
	newCmd.Flags().BoolVar(&force, "force", false, "replace an existing identity file")
	showCmd := &cobra.Command{
		Use:   "show",
		Short: "show your identity as the explorer knows it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := a.identity()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			u, err := a.client().User(ctx, m.id)
			if err != nil {
				return err
			}
			if u.PublicKey != hex.EncodeToString(m.sk.Public().(ed25519.PublicKey)) {
				return fmt.Errorf("user %d on the explorer has another key than %s: %w", m.id, a.identityPath, explorer.ErrConflict)
			}
			return a.printUser(u)
		},
	}
	cmd.AddCommand(newCmd, showCmd)
	return cmd
}

func (a *app) printUser(u gridtypes.User) error {
	return a.print(u, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "ID\tNAME\tEMAIL\tPUBLIC KEY\n%d\t%s\t%s\t%s\n", u.ID, u.Name, u.Email, u.PublicKey)
	})
}

func farmCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "farm", Short: "create and list farms"}
	var ips []string
	var email, country, city string
	create := &cobra.Command{
		Use:   "create <name>",
		Short: "create a farm owned by you",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := a.identity()
			if err != nil {
				return err
			}
			f := gridtypes.Farm{OwnerID: m.id, Name: args[0], Email: email, Created: time.Now().Unix(),
				Location: gridtypes.Location{Country: country, City: city}}
			for _, s := range ips {
				addr, gw, ok := strings.Cut(s, "=")
				if !ok {
					if p, err := netip.ParsePrefix(addr); err == nil {
						gw = p.Masked().Addr().Next().String()
					}
				}
				f.IPAddresses = append(f.IPAddresses, gridtypes.FarmIP{Address: addr, Gateway: gw})
			}
			f.Sign(m.sk)
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			if f.ID, err = a.client().CreateFarm(ctx, f); err != nil {
				return err
			}
			return a.printFarms([]gridtypes.Farm{f})
		},
	}
	create.Flags().StringSliceVar(&ips, "ip", nil, "public IPv4 of the farm's pool: cidr[=gateway] (repeatable)")
	create.Flags().StringVar(&email, "email", "", "contact email")
	create.Flags().StringVar(&country, "country", "", "country")
	create.Flags().StringVar(&city, "city", "", "city")
	var mine bool
	list := &cobra.Command{
		Use:   "list",
		Short: "list farms",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var owner uint64
			if mine {
				m, err := a.identity()
				if err != nil {
					return err
				}
				owner = m.id
			}
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			fs, err := a.client().Farms(ctx, owner)
			if err != nil {
				return err
			}
			return a.printFarms(fs)
		},
	}
	list.Flags().BoolVar(&mine, "mine", false, "only your farms")
	cmd.AddCommand(create, list)
	return cmd
}

func (a *app) printFarms(fs []gridtypes.Farm) error {
	if fs == nil {
		fs = []gridtypes.Farm{}
	}
	return a.print(fs, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tOWNER\tPUBLIC IPS\tFREE IPS")
		for _, f := range fs {
			free := 0
			for _, ip := range f.IPAddresses {
				if ip.ReservationID == 0 {
					free++
				}
			}
			fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\n", f.ID, f.Name, f.OwnerID, len(f.IPAddresses), free)
		}
	})
}

func nodeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "find nodes"}
	var q explorer.NodeQuery
	var mru, sru, hru uint64
	list := &cobra.Command{
		Use:   "list",
		Short: "list nodes with at least the given free capacity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q.Free.MRU, q.Free.SRU, q.Free.HRU = mru*gridtypes.GiB, sru*gridtypes.GiB, hru*gridtypes.GiB
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			ns, err := a.client().Nodes(ctx, q)
			if err != nil {
				return err
			}
			return a.printNodes(ns)
		},
	}
	f := list.Flags()
	f.Uint64Var(&q.FarmID, "farm", 0, "farm id")
	f.StringVar(&q.Country, "country", "", "country")
	f.StringVar(&q.City, "city", "", "city")
	f.Uint64Var(&q.Free.CRU, "cru", 0, "free cores")
	f.Uint64Var(&mru, "mru", 0, "free memory (GiB)")
	f.Uint64Var(&sru, "sru", 0, "free SSD (GiB)")
	f.Uint64Var(&hru, "hru", 0, "free HDD (GiB)")
	f.Uint64Var(&q.UpWithin, "up", 0, "reported within this many seconds")
	show := &cobra.Command{
		Use:   "show <node id>",
		Short: "show one node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			n, err := a.client().Node(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printNodes([]gridtypes.Node{n})
		},
	}
	var pc gridtypes.PublicConfig
	var clear bool
	setPublic := &cobra.Command{
		Use:   "set-public <node id>",
		Short: "set (or --clear) the public interface of a node of your farm",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := a.identity()
			if err != nil {
				return err
			}
			req := gridtypes.PublicConfigRequest{NodeID: args[0], Created: time.Now().Unix()}
			if !clear {
				pc.Type = "macvlan"
				req.Config = &pc
			}
			req.Sign(m.sk)
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			n, err := a.client().SetPublicConfig(ctx, req)
			if err != nil {
				return err
			}
			return a.printNodes([]gridtypes.Node{n})
		},
	}
	sf := setPublic.Flags()
	sf.StringVar(&pc.Master, "master", "", "NIC the public macvlan hangs from")
	sf.StringVar(&pc.IPv4, "ipv4", "", "public IPv4 with prefix")
	sf.StringVar(&pc.GW4, "gw4", "", "IPv4 gateway")
	sf.StringVar(&pc.IPv6, "ipv6", "", "public IPv6 with prefix")
	sf.StringVar(&pc.GW6, "gw6", "", "IPv6 gateway")
	sf.BoolVar(&clear, "clear", false, "remove the public configuration")
	cmd.AddCommand(list, show, setPublic, localCmd(a))
	return cmd
}

func (a *app) printNodes(ns []gridtypes.Node) error {
	if ns == nil {
		ns = []gridtypes.Node{}
	}
	return a.print(ns, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NODE ID\tFARM\tCRU FREE/TOTAL\tMRU GiB\tSRU GiB\tHRU GiB\tVERSION\tLAST SEEN")
		for _, n := range ns {
			free, t := n.Free(), n.TotalResources
			fmt.Fprintf(w, "%s\t%d\t%d/%d\t%s/%s\t%s/%s\t%s/%s\t%s\t%s ago\n", n.NodeID, n.FarmID, free.CRU, t.CRU,
				gib(free.MRU), gib(t.MRU), gib(free.SRU), gib(t.SRU), gib(free.HRU), gib(t.HRU), n.OSVersion, ago(n.Updated))
		}
	})
}
