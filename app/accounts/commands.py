import click
users_cli = click.Group("users")
