package zinit

// Signal is a signal name as zinit's kill command takes it.
type Signal string

// Signals.
const (
	SIGABRT   Signal = "SIGABRT"
	SIGALRM   Signal = "SIGALRM"
	SIGBUS    Signal = "SIGBUS"
	SIGCHLD   Signal = "SIGCHLD"
	SIGCONT   Signal = "SIGCONT"
	SIGFPE    Signal = "SIGFPE"
	SIGHUP    Signal = "SIGHUP"
	SIGILL    Signal = "SIGILL"
	SIGINT    Signal = "SIGINT"
	SIGIO     Signal = "SIGIO"
	SIGKILL   Signal = "SIGKILL"
	SIGPIPE   Signal = "SIGPIPE"
	SIGPROF   Signal = "SIGPROF"
	SIGPWR    Signal = "SIGPWR"
	SIGQUIT   Signal = "SIGQUIT"
	SIGSEGV   Signal = "SIGSEGV"
	SIGSTKFLT Signal = "SIGSTKFLT"
	SIGSTOP   Signal = "SIGSTOP"
	SIGSYS    Signal = "SIGSYS"
	SIGTERM   Signal = "SIGTERM"
	SIGTRAP   Signal = "SIGTRAP"
	SIGTSTP   Signal = "SIGTSTP"
	SIGTTIN   Signal = "SIGTTIN"
	SIGTTOU   Signal = "SIGTTOU"
	SIGURG    Signal = "SIGURG"
	SIGUSR1   Signal = "SIGUSR1"
	SIGUSR2   Signal = "SIGUSR2"
	SIGVTALRM Signal = "SIGVTALRM"
	SIGWINCH  Signal = "SIGWINCH"
	SIGXCPU   Signal = "SIGXCPU"
	SIGXFSZ   Signal = "SIGXFSZ"
)
