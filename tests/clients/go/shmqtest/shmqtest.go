// Package shmqtest is what the Go client suites share: a real shmqd with its
// SQS bridge on a free port of 127.0.0.1, in a namespace of its own, a
// process environment that never reaches the user's AWS set-up, and the MD5
// digests Amazon SQS returns, computed independently of the bridge.
//
// ctest passes the daemon as SHMQD; by default it is the repository's
// build/bin/shmqd.
package shmqtest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The identity every suite uses: dummy credentials, the daemon's default
// region and account.
const (
	Region    = "us-east-1"
	Account   = "000000000000"
	AccessKey = "test"
	SecretKey = "test"
)

// IsolateEnv drops every AWS_* variable of the caller's environment and
// points the SDKs at dummy credentials and empty config files, so that
// neither ~/.aws nor the instance metadata service is ever consulted.
func IsolateEnv() {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AWS_") {
			os.Unsetenv(name)
		}
	}
	for name, value := range map[string]string{
		"AWS_ACCESS_KEY_ID":           AccessKey,
		"AWS_SECRET_ACCESS_KEY":       SecretKey,
		"AWS_REGION":                  Region,
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"NO_PROXY":                    "127.0.0.1,localhost",
		"no_proxy":                    "127.0.0.1,localhost",
	} {
		os.Setenv(name, value)
	}
}

// Binary is the shmqd the suites start: $SHMQD, else build/bin/shmqd of the
// repository this file belongs to.
func Binary() string {
	if path := os.Getenv("SHMQD"); path != "" {
		return path
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	return filepath.Join(repo, "build", "bin", "shmqd")
}

// Daemon is one running shmqd.
type Daemon struct {
	Namespace string
	Endpoint  string // http://127.0.0.1:PORT

	cmd     *exec.Cmd
	dir     string
	logPath string
	exited  chan struct{}
}

var daemons atomic.Int64 // started by this process, for their namespaces

// Start runs shmqd with its bridge on a free port of 127.0.0.1 and returns
// once the daemon has written that port to its port file.
func Start(extraArgs ...string) (*Daemon, error) {
	d := &Daemon{
		Namespace: fmt.Sprintf("goc%dx%d", os.Getpid(), daemons.Add(1)-1),
		exited:    make(chan struct{}),
	}
	dir, err := os.MkdirTemp("", "shmq-"+d.Namespace+"-")
	if err != nil {
		return nil, err
	}
	d.dir = dir
	d.logPath = filepath.Join(dir, "shmqd.log")
	portFile := filepath.Join(dir, "port")
	log, err := os.Create(d.logPath)
	if err != nil {
		d.cleanup()
		return nil, err
	}
	defer log.Close()

	args := append([]string{
		"--namespace", d.Namespace,
		"--bridge-listen", "127.0.0.1:0",
		"--bridge-port-file", portFile,
		"--log-level", "warn",
	}, extraArgs...)
	d.cmd = exec.Command(Binary(), args...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	// SIGTERM to the daemon should the test binary die without Stop (a
	// ctest timeout kills it). The signal follows the death of the thread
	// that forked, which for the Go runtime means the process: it does not
	// retire threads of goroutines that are not locked to them.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		d.cleanup()
		return nil, err
	}
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()

	for deadline := time.Now().Add(15 * time.Second); ; {
		select {
		case <-d.exited:
			text := d.Log()
			d.cleanup()
			return nil, fmt.Errorf("shmqd exited at start (%v):\n%s", d.cmd.ProcessState, text)
		default:
		}
		if text, err := os.ReadFile(portFile); err == nil {
			if port, err := strconv.Atoi(strings.TrimSpace(string(text))); err == nil && port > 0 {
				d.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, errors.New("shmqd did not write its bridge port within 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// QueueURL is the URL the bridge gives the queue called name.
func (d *Daemon) QueueURL(name string) string {
	return d.Endpoint + "/" + Account + "/" + name
}

// Log is what the daemon has printed so far.
func (d *Daemon) Log() string {
	text, _ := os.ReadFile(d.logPath)
	return string(text)
}

// Stop ends the daemon with SIGTERM (SIGKILL after 10 s) and removes its
// segments and temporary directory.
func (d *Daemon) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cleanup()
}

func (d *Daemon) cleanup() {
	segments, _ := filepath.Glob("/dev/shm/shmq." + d.Namespace + ".*")
	for _, path := range segments {
		os.Remove(path)
	}
	os.RemoveAll(d.dir)
}

// Run is a TestMain for a suite that shares one daemon: it isolates the
// environment, starts shmqd into *daemon, runs the tests, stops the daemon
// and returns the exit code. On failure it prints the daemon's log.
func Run(m *testing.M, daemon **Daemon) int {
	IsolateEnv()
	d, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot start %s: %v\n", Binary(), err)
		return 1
	}
	*daemon = d
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- shmqd log (namespace %s):\n%s", d.Namespace, d.Log())
	}
	d.Stop()
	return code
}

// Unique returns stem-N, N counting up from 0 in this process, so that no
// two tests of a suite share a queue.
func Unique(stem string) string {
	return fmt.Sprintf("%s-%d", stem, queues.Add(1)-1)
}

var queues atomic.Int64

// MD5OfBody is the MD5OfMessageBody SQS returns for body.
func MD5OfBody(body string) string {
	sum := md5.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

// ContentDeduplicationID is the MessageDeduplicationId SQS gives a message
// of a queue with ContentBasedDeduplication: the SHA-256 of its body, in hex.
func ContentDeduplicationID(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

// Attribute is a message attribute, whatever the SDK's own type for it:
// StringValue for String and Number types, BinaryValue for Binary types.
type Attribute struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

// MD5OfAttributes is the MD5OfMessageAttributes SQS returns, written from
// AWS's description (SQS Developer Guide, "Calculating the MD5 message digest
// for message attributes"): names sorted; each attribute encoded as
// length-prefixed name, length-prefixed data type, one transport byte (1 for
// String and Number, 2 for Binary) and length-prefixed value; lengths are
// 4-byte big-endian.
func MD5OfAttributes(attributes map[string]Attribute) string {
	names := make([]string, 0, len(attributes))
	for name := range attributes {
		names = append(names, name)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	field := func(data []byte) {
		binary.Write(&buf, binary.BigEndian, uint32(len(data)))
		buf.Write(data)
	}
	for _, name := range names {
		a := attributes[name]
		field([]byte(name))
		field([]byte(a.DataType))
		if strings.HasPrefix(a.DataType, "Binary") {
			buf.WriteByte(2)
			field(a.BinaryValue)
		} else {
			buf.WriteByte(1)
			field([]byte(a.StringValue))
		}
	}
	sum := md5.Sum(buf.Bytes())
	return hex.EncodeToString(sum[:])
}
