import click
artists_cli = click.Group("artists")
demo_cli = click.Group("demo")
