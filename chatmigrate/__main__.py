from chatmigrate.cli import main

main()
