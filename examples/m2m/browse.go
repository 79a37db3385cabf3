package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/m2mbridge/m2mbridge/internal/fieldtool"
	"github.com/m2mbridge/m2mbridge/opcua"
)

func runBrowse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("browse", "m2m browse opc.tcp://host:4840 [-root NODE] [-depth N] [-json] [-config FILE [-name plc1] [-mode M] [-interval D]] "+
		"[-security-policy P -security-mode M] [-username U -password-env VAR | -password-file F] [-pki-dir D] "+
		"[-server-cert-sha256 H | -trust-dir D | -insecure-skip-verify]", stderr)
	root := fs.String("root", "i=85", "the node to browse from (i=85 is the Objects folder); ns=2;s=Line1, nsu=urn:...;i=5001")
	depth := fs.Int("depth", 3, "how many levels below -root to follow (Organizes and HasComponent references)")
	asJSON := fs.Bool("json", false, "print one JSON object per node instead of a tree")
	config := fs.String("config", "", "also write a whole gateway configuration here: this server as a device with the variables found as its nodes, "+
		"and a stdout sink (check it with gateway -check)")
	name := fs.String("name", "plc1", "-config: the device's name (the samples' source)")
	var c opcua.Config
	fs.StringVar((*string)(&c.Mode), "mode", "", "-config: subscribe (the default) or poll")
	fs.DurationVar(&c.Interval, "interval", 0, "-config: the device's interval (default 1s)")
	fs.DurationVar(&c.Timeout, "timeout", 0, "how long each request may take (default 5s)")
	fs.StringVar((*string)(&c.SecurityPolicy), "security-policy", "", "None, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss (as the gateway's security_policy)")
	fs.StringVar((*string)(&c.SecurityMode), "security-mode", "", "None, Sign or SignAndEncrypt (default SignAndEncrypt with a policy)")
	fs.StringVar(&c.Auth, "auth", "", "anonymous, username or certificate (default: username with -username)")
	fs.StringVar(&c.Username, "username", "", "user name")
	fs.StringVar(&c.PasswordEnv, "password-env", "", "the environment variable holding the password (never give it on the command line)")
	fs.StringVar(&c.PasswordFile, "password-file", "", "a file holding the password")
	fs.StringVar(&c.PKIDir, "pki-dir", "", "where the client certificate and key are, generated on first use (needed with a security policy)")
	fs.StringVar(&c.Certificate, "certificate", "", "client certificate file, instead of -pki-dir's")
	fs.StringVar(&c.PrivateKey, "private-key", "", "client private key file, with -certificate")
	fs.StringVar(&c.ServerCertificateSHA256, "server-cert-sha256", "", "pin the server certificate: its SHA-256 in hex")
	fs.StringVar(&c.TrustDir, "trust-dir", "", "a folder of trusted server certificates")
	fs.BoolVar(&c.InsecureSkipVerify, "insecure-skip-verify", false, "accept any server certificate (commissioning only)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("browse wants one endpoint URL (opc.tcp://host:4840), got %d arguments %q (see m2m browse -h)", len(pos), pos)
	}
	if *depth < 1 || *depth > 20 {
		return usagef("-depth %d: want 1 to 20", *depth)
	}
	c.Endpoint, c.Name = pos[0], *name
	// The settings as the gateway would check them (the node is a stand-in).
	check := c
	check.Nodes = []opcua.Node{{Name: "root", Node: *root}}
	if err := check.Validate(); err != nil {
		return &fieldtool.UsageError{Err: err}
	}
	fmt.Fprintf(stderr, "m2m: browsing %s from %s, %d levels deep\n", c.Endpoint, *root, *depth)
	tree, err := opcua.BrowseTree(ctx, c, *root, *depth)
	if err != nil {
		return err
	}
	if *asJSON {
		err = fieldtool.PrintTreeJSON(stdout, tree)
	} else {
		err = fieldtool.PrintTree(stdout, tree)
	}
	if err != nil {
		return err
	}
	vars := opcua.Variables(tree)
	fmt.Fprintf(stderr, "m2m: %d variables\n", len(vars))
	if *config == "" {
		return nil
	}
	data, n, skipped, err := fieldtool.GatewayYAML(fieldtool.GatewayFile{Device: *name, Interval: c.Interval, OPCUA: c,
		Comment: fmt.Sprintf("Made by m2m browse %s -root %s -depth %d on %s.\nCheck it with: gateway -check %s\nRun it with:   gateway -config %s",
			c.Endpoint, *root, *depth, time.Now().UTC().Format("2006-01-02"), *config, *config)}, tree)
	for _, s := range skipped {
		fmt.Fprintf(stderr, "m2m: not in %s: %s\n", *config, s)
	}
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*config, data); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "m2m: wrote %s: device %q with %d nodes and a stdout sink; check it with: gateway -check %s\n", *config, *name, n, *config)
	return nil
}
