"""The bronze boundary: deliveries in, bronze rows and quarantine records out."""
