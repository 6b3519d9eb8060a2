"""The miner toolkit shared by built-in and pack miners."""
