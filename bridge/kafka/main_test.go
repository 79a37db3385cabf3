package kafka_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// childEnv makes the test binary run a kfake cluster instead of the tests.
const childEnv = "M2MB_KFAKE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		runChildCluster()
		return
	}
	os.Exit(m.Run())
}

// runChildCluster serves a kfake cluster until stdin closes.
func runChildCluster() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", c.ListenAddrs()[0])
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
}

// childCluster runs a kfake cluster in a child process, so that its
// goroutines (kfake keeps one per client connection until the cluster
// closes) do not count against the sink in the goroutine leak check. It
// returns the broker address.
func childCluster(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(l, "ADDR ")
		require.True(t, ok, "kfake child: %s", l)
		return addr
	case <-done:
		t.Fatal("kfake child exited before serving")
	case <-time.After(30 * time.Second):
		t.Fatal("kfake child did not start within 30s")
	}
	return ""
}
