"""Yijian's generation runtime: runs in the bundle environment as a child process."""
