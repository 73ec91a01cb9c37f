// Package apachetest runs a real Apache httpd 2.4 with mod_dav as a WebDAV server for tests, optionally
// behind basic or digest authentication, and lets a test kill it (the archive "goes away") and start it
// again on the same port and directory.
//
// Start skips the test when /usr/sbin/apache2 is missing; with SIPHOOK_REQUIRE_APACHE=1 (as in CI) it fails
// instead. Run as root, Apache's workers run as www-data (Apache refuses to serve as root), so the server's
// directory lives outside the test's own 0700 temporary directory and is handed to www-data. On Linux the
// test process makes itself its descendants' subreaper, so the workers Stop kills are reaped by it rather
// than left as zombies under an init that does not reap.
package apachetest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// Apache is the server binary.
	Apache = "/usr/sbin/apache2"
	// ModulesDir holds Apache's loadable modules.
	ModulesDir = "/usr/lib/apache2/modules"
	// RequireEnv set to "1" turns a missing Apache into a failure rather than a skip.
	RequireEnv = "SIPHOOK_REQUIRE_APACHE"

	// Realm is the authentication realm (AuthName) of the DAV location.
	Realm = "siphook-test"
	// DefaultUser and DefaultPassword are the credentials used when Options.Auth is set without them.
	DefaultUser     = "siphook"
	DefaultPassword = "apachetest-password"

	// StartTimeout bounds how long Start and Restart wait for the server to answer.
	StartTimeout = 15 * time.Second
	// StopTimeout bounds how long Stop waits for the port to close.
	StopTimeout = 10 * time.Second
)

// Options configures the server.
type Options struct {
	Auth     string // "" (none), "basic" or "digest"
	User     string // DefaultUser when empty and Auth is set
	Password string // DefaultPassword when empty and Auth is set
}

// Server is one Apache instance tied to a test. Its methods end the test with t.Fatal when something goes
// wrong, so they must be called from the test's goroutine; URL and Root may be called from any.
type Server struct {
	t    *testing.T
	opts Options
	base string // ServerRoot: config, logs, locks, password files, www/
	conf string
	root string // base/www/dav
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	output *lockedBuffer // Apache's own stdout and stderr (errors before the error log opens)
}

// Start writes an Apache configuration and starts the server, or skips t when Apache is not installed. The
// server is killed and its directory removed when t ends.
func Start(t *testing.T, opts Options) *Server {
	t.Helper()
	if _, err := os.Stat(Apache); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but %s: %v", RequireEnv, Apache, err)
		}
		t.Skipf("no %s", Apache)
	}
	switch opts.Auth {
	case "":
	case "basic", "digest":
		if opts.User == "" {
			opts.User = DefaultUser
		}
		if opts.Password == "" {
			opts.Password = DefaultPassword
		}
		if strings.ContainsAny(opts.User, ":\n") || strings.Contains(opts.Password, "\n") {
			t.Fatalf("apachetest: user must not contain ':' or newlines, password no newlines")
		}
	default:
		t.Fatalf("apachetest: unknown auth %q (want \"\", basic or digest)", opts.Auth)
	}

	// Not t.TempDir: its parent is 0700 and root's, which www-data cannot traverse.
	base, err := os.MkdirTemp("", "apachetest-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, opts: opts, base: base, conf: filepath.Join(base, "apache2.conf"), root: filepath.Join(base, "www", "dav")}
	t.Cleanup(func() {
		s.kill()
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("apachetest: remove %s: %v", base, err)
		}
	})
	if err := s.prepare(); err != nil {
		t.Fatalf("apachetest: %v", err)
	}

	// A free port can be taken by someone else before Apache binds it: try a few.
	var lastErr error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("apachetest: %v", err)
		}
		if err := os.WriteFile(s.conf, []byte(s.config()), 0o644); err != nil {
			t.Fatal(err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	t.Fatalf("apachetest: %v", lastErr)
	return nil
}

// URL is the DAV collection's address, http://127.0.0.1:PORT/dav/.
func (s *Server) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/dav/", s.port) }

// Root is the directory the DAV collection stores its files in: a file written there is what a GET of the
// same path under URL returns. Run as root, the server works as www-data: what a test writes there must
// stay readable to it, and directories the server is to write into must be its own (or writable to all).
func (s *Server) Root() string { return s.root }

// Options returns the options the server runs with, credentials filled in.
func (s *Server) Options() Options { return s.opts }

// ErrorLog returns Apache's error log so far, for test failure messages.
func (s *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.base, "logs", "error.log"))
	return string(b)
}

// Stop kills the server with SIGKILL, all its processes, and returns once its port refuses connections.
// The port stays reserved for Restart (nothing else is told about it). Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.kill()
	deadline := time.Now().Add(StopTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err != nil {
			return
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			s.t.Fatalf("apachetest: port %d still accepts connections %v after SIGKILL", s.port, StopTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts the server again on the same port, directory and credentials (stopping it first if it
// runs), and returns once it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range 50 { // the port is ours, but a kernel may take a moment to let it go
		if err = s.start(); err == nil || !strings.Contains(err.Error(), "in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("apachetest: restart: %v", err)
	}
}

func (s *Server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// prepare creates the directory tree and password files, owned by the user Apache's workers run as.
func (s *Server) prepare() error {
	for _, d := range []string{"logs", "lock", "run", "www/dav"} {
		if err := os.MkdirAll(filepath.Join(s.base, d), 0o755); err != nil {
			return err
		}
	}
	switch s.opts.Auth {
	case "basic":
		sum := sha1.Sum([]byte(s.opts.Password))
		line := s.opts.User + ":{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
		if err := os.WriteFile(filepath.Join(s.base, "htpasswd"), []byte(line), 0o640); err != nil {
			return err
		}
	case "digest":
		ha1 := md5.Sum([]byte(s.opts.User + ":" + Realm + ":" + s.opts.Password))
		line := s.opts.User + ":" + Realm + ":" + hex.EncodeToString(ha1[:]) + "\n"
		if err := os.WriteFile(filepath.Join(s.base, "htdigest"), []byte(line), 0o640); err != nil {
			return err
		}
	}
	uid, gid, ok, err := workerIDs()
	if err != nil || !ok {
		return err
	}
	if err := os.Chmod(s.base, 0o755); err != nil { // MkdirTemp made it 0700
		return err
	}
	return filepath.WalkDir(s.base, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// workerIDs returns the user and group Apache's workers run as when we are root (ok false otherwise: they
// run as us).
func workerIDs() (uid, gid int, ok bool, err error) {
	if os.Geteuid() != 0 {
		return 0, 0, false, nil
	}
	u, err := user.Lookup(workerUser())
	if err != nil {
		return 0, 0, false, err
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, false, err
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return 0, 0, false, err
	}
	return uid, gid, true, nil
}

func workerUser() string {
	if _, err := user.Lookup("www-data"); err == nil {
		return "www-data"
	}
	return "nobody"
}

// config is the whole apache2.conf: nothing from /etc/apache2 is read.
func (s *Server) config() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("ServerRoot %q", s.base)
	p("ServerName 127.0.0.1")
	p("Listen 127.0.0.1:%d", s.port)
	p("PidFile %q", filepath.Join(s.base, "run", "apache2.pid"))
	p("DefaultRuntimeDir %q", filepath.Join(s.base, "run"))
	p("ErrorLog %q", filepath.Join(s.base, "logs", "error.log"))
	p("LogLevel warn")
	// File locks die with their processes; SysV or POSIX semaphores would leak at every SIGKILL.
	p("Mutex fcntl:%s default", filepath.Join(s.base, "lock"))
	if uid, gid, ok, err := workerIDs(); ok && err == nil {
		p("User #%d", uid)
		p("Group #%d", gid)
	}
	for _, m := range []string{"mpm_event", "authn_core", "authz_core", "authz_user", "authn_file", "auth_basic", "auth_digest", "dav", "dav_fs"} {
		p("LoadModule %s_module %q", m, filepath.Join(ModulesDir, "mod_"+m+".so"))
	}
	p("StartServers 1")
	p("ServerLimit 2")
	p("ThreadsPerChild 16")
	p("MaxRequestWorkers 32")
	p("MinSpareThreads 4")
	p("MaxSpareThreads 32")
	p("KeepAlive On")
	// Without TCP_DEFER_ACCEPT: a client's connection that sent nothing yet (Go dials spares) would sit in
	// the kernel unaccepted and, when Stop kills the server, be dropped without a FIN or RST, leaving the
	// client a half-open connection (and its goroutines) until keep-alive probes notice.
	p("AcceptFilter http none")
	p("Timeout 30")
	p("DavLockDB %q", filepath.Join(s.base, "lock", "DavLock"))
	p("DocumentRoot %q", filepath.Join(s.base, "www"))
	p("<Directory />")
	p("  AllowOverride None")
	p("  Require all denied")
	p("</Directory>")
	p("<Directory %q>", filepath.Join(s.base, "www"))
	p("  Require all granted")
	p("</Directory>")
	p("<Location /dav/>")
	p("  Dav On")
	switch s.opts.Auth {
	case "basic":
		p("  AuthType Basic")
		p("  AuthName %q", Realm)
		p("  AuthBasicProvider file")
		p("  AuthUserFile %q", filepath.Join(s.base, "htpasswd"))
		p("  Require valid-user")
	case "digest":
		p("  AuthType Digest")
		p("  AuthName %q", Realm)
		p("  AuthDigestDomain /dav/")
		p("  AuthDigestProvider file")
		p("  AuthUserFile %q", filepath.Join(s.base, "htdigest"))
		p("  Require valid-user")
	}
	p("</Location>")
	return b.String()
}

// start runs Apache in the foreground in its own process group and waits until it answers HTTP.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	_ = os.Remove(filepath.Join(s.base, "run", "apache2.pid")) // left behind by SIGKILL
	logStart := len(s.ErrorLog())
	newLog := func() string { return tail(s.ErrorLog()[logStart:]) }
	out := &lockedBuffer{}
	cmd := exec.Command(Apache, "-f", s.conf, "-DFOREGROUND")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Stop kills the workers too
	adoptOrphans()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.output = cmd, exited, out

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("apache2 exited at start (%v): %s%s", cmd.ProcessState, out.String(), newLog())
		default:
		}
		resp, err := client.Get(s.URL()) // any answer will do, a 401 too
		if err == nil {
			_ = resp.Body.Close()
			client.CloseIdleConnections()
			return nil
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("apache2 did not answer within %v: %v: %s%s", StartTimeout, err, out.String(), newLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs Apache's process group and waits for the main process.
func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.exited
	reapGroup(pgid) // the workers, orphaned and handed to us by adoptOrphans
	s.cmd = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(log string) string {
	if log == "" {
		return ""
	}
	const max = 4000
	if len(log) > max {
		log = "…" + log[len(log)-max:]
	}
	return "\nerror.log:\n" + log
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
