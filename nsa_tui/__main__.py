from nsa_tui.cli import main

main()
