package delivery

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// s3MetaSHA256 is the user metadata key (x-amz-meta-sha256) that carries an object's hex SHA-256.
const s3MetaSHA256 = "sha256"

// s3Target stores recordings in an S3 bucket (AWS or compatible: MinIO, Ceph RGW, …) with minio-go.
type s3Target struct {
	name, bucket, prefix, verify string
	timeout                      time.Duration
	client                       *minio.Client
	sse                          encrypt.ServerSide // nil: none asked (the bucket's default applies)
}

// NewS3 builds an S3 target from cfg (type s3). Objects are named <prefix>/<path relative to the recordings
// directory>, carry the user metadata sha256 and, with sse, server-side encryption. It does not contact
// the server: a bucket that is missing or unreachable shows in the first delivery.
func NewS3(cfg TargetConfig) (Target, error) {
	if cfg.Type != TypeS3 {
		return nil, fmt.Errorf("delivery: target %q: type %q is not s3", cfg.Name, cfg.Type)
	}
	if errs := cfg.validate("delivery target " + cfg.Name); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.IAM{},
		})
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if !cfg.Insecure {
		tc, err := s3TLSConfig(cfg.CAFile, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, fmt.Errorf("delivery: target %q: %w", cfg.Name, err)
		}
		transport.TLSClientConfig = tc
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       !cfg.Insecure,
		Transport:    transport,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   1, // the queue retries, with its own backoff and buffer
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: target %q: %w", cfg.Name, err)
	}
	t := &s3Target{
		name:    cfg.Name,
		bucket:  cfg.Bucket,
		prefix:  strings.Trim(cfg.Prefix, "/"),
		verify:  cfg.Verify,
		timeout: cfg.Timeout,
		client:  client,
	}
	if t.verify == "" {
		t.verify = DefaultVerify
	}
	if t.timeout <= 0 {
		t.timeout = DefaultTargetTimeout
	}
	switch cfg.SSE {
	case "AES256":
		t.sse = encrypt.NewSSE()
	case "aws:kms":
		if t.sse, err = encrypt.NewSSEKMS(cfg.SSEKMSKeyID, nil); err != nil {
			return nil, fmt.Errorf("delivery: target %q: %w", cfg.Name, err)
		}
	}
	return t, nil
}

// s3TLSConfig trusts the system roots plus caFile's certificates (PEM), if given.
func s3TLSConfig(caFile string, skipVerify bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify} //nolint:gosec // opt-in, for tests
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

func (t *s3Target) Name() string { return t.name }

func (t *s3Target) key(name string) string {
	if t.prefix == "" {
		return name
	}
	return path.Join(t.prefix, name)
}

func (t *s3Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, sum, contentType string) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	key := t.key(name)
	_, err := t.client.PutObject(ctx, t.bucket, key, body, size, minio.PutObjectOptions{
		ContentType:          contentType,
		UserMetadata:         map[string]string{s3MetaSHA256: sum},
		ServerSideEncryption: t.sse,
	})
	if err != nil {
		return t.error("put", key, err)
	}
	return nil
}

func (t *s3Target) Verify(ctx context.Context, name string, size int64, sum string) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	key := t.key(name)
	if t.verify == VerifyReadback {
		obj, err := t.client.GetObject(ctx, t.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return t.error("get", key, err)
		}
		defer obj.Close()
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(obj, size+1))
		if err != nil {
			return t.error("get", key, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != size || got != sum {
			return fmt.Errorf("%w: s3 %s/%s: read back %d bytes with SHA-256 %s, sent %d bytes with %s", ErrMismatch,
				t.bucket, key, n, got, size, sum)
		}
		return nil
	}
	info, err := t.client.StatObject(ctx, t.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return t.error("stat", key, err)
	}
	var stored string
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, s3MetaSHA256) {
			stored = v
		}
	}
	if info.Size != size || !strings.EqualFold(stored, sum) {
		return fmt.Errorf("%w: s3 %s/%s: stored %d bytes with sha256 metadata %q, sent %d bytes with %s", ErrMismatch,
			t.bucket, key, info.Size, stored, size, sum)
	}
	return nil
}

// error wraps a minio error: a missing object (on verification) is ErrMismatch; requests the server
// rejects as such are *Permanent; the rest (5xx, network, credentials, missing bucket) are retried.
func (t *s3Target) error(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	err = fmt.Errorf("s3 %s %s/%s: %w", op, t.bucket, key, err)
	switch resp.Code {
	case "NoSuchKey":
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	case "InvalidArgument", "InvalidRequest", "EntityTooLarge", "KeyTooLongError", "InvalidBucketName",
		"MetadataTooLarge", "InvalidStorageClass", "NotImplemented", "MethodNotAllowed":
		return &Permanent{Err: err}
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		if op != "put" && resp.Code != "NoSuchBucket" {
			return fmt.Errorf("%w: %w", ErrMismatch, err) // HEAD has no body to carry the code
		}
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusLengthRequired, http.StatusRequestEntityTooLarge,
		http.StatusNotImplemented:
		return &Permanent{Err: err}
	}
	return err
}
