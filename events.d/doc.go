// Package eventsd holds ctdb-go's shipped event scripts: functions (the
// helpers scripts source), 10.interface and 50.postgres. It has no Go
// API; its tests run the real scripts with sh against stub commands. See
// README.md for the script contract.
package eventsd
