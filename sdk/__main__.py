from ptsdk.cli import main

main()
