//go:build !race

package main

const raceEnabledCmd = false
