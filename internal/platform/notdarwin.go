//go:build !darwin

package platform

const isDarwin = false
