package platform

import "os"

// syncDirFsync fsyncs the directory itself (with Fsync, so F_FULLFSYNC on macOS).
func syncDirFsync(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = Fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
