"""failover: move an ENI, a secondary private IP or an Elastic IP to a hot standby on EC2."""

__version__ = "0.1.0"
