// Package zinit is the inside of the zinit process supervisor (cmd/zinit):
// service files, the state machine of each service, the process table that
// spawns, reaps and adopts processes, and the control-socket servers.
//
// A Manager loads every service file of its config directory and runs one
// goroutine per service, which waits for the service's dependencies, spawns
// it in its own session, runs its test command, and restarts it with a capped
// exponential backoff when it exits. Every spawned process is recorded in a
// state directory (pid + start time), so a zinit that is killed and started
// again adopts the processes still running instead of starting duplicates;
// service output goes through named pipes in that directory, which survive
// zinit, so a service never gets SIGPIPE because zinit died.
//
// Beyond the original zinit: restarts back off exponentially (capped) instead
// of a fixed second; stop escalates to SIGKILL of the whole process group
// after a timeout; a dependency cycle or a bad service file is an error for
// that service alone; a blocked service says which dependency it waits for;
// a stopped target survives a restart of zinit.
package zinit
