"""Registry fixtures: the CNCF distribution registry started on a free loopback port."""
