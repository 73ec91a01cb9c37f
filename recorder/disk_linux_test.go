package recorder

import "testing"

func TestStatFree(t *testing.T) {
	free, err := statFree(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if free == 0 {
		t.Error("statFree = 0 on the test machine's temporary directory")
	}
	if _, err := statFree("/nonexistent/siphook"); err == nil {
		t.Error("statFree of a missing directory succeeded")
	}
}
