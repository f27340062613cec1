from ambula.cli import main

main()
