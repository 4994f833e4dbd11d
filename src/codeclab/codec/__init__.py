"""The codec contract, the bitstream container and static validation."""
