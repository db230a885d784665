package proc

import "golang.org/x/sys/unix"

// szomb is a zombie's p_stat (sys/proc.h).
const szomb = 5

// zombie reads the process's state through sysctl kern.proc.pid; a process
// it cannot find is gone.
func zombie(pid int) bool {
	p, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	return err != nil || p.Proc.P_pid != int32(pid) || p.Proc.P_stat == szomb
}
