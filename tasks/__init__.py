"""What happens when a message arrives: message contract and use-case handlers."""
